"""Wire shapes both APIs read: client/v4 and the Worker bindings speak the same
D1 query body and KV bulk read, so each is declared once, here."""

from typing import Any

from accounts.exceptions import InvalidInput
from accounts.services import kv
from accounts.services.d1 import Query

from .inputs import JSON, Boolean, Field, Input, ListOf, Nested, Schema, Text


class Statement(Input):
    """One query: SQL (one or more statements) and the parameters of a single
    statement."""

    # Any string: SQLite itself refuses what it cannot run, with D1's code.
    sql = Text(required=True, storable=False)
    params = ListOf(JSON(max_bytes=None), default=[])


class Queries(Field[list[Query]]):
    """``{"sql", "params"?}``, ``{"batch": [...]}`` or a list of the first; each
    becomes a ``d1.Query``. A batch runs as one transaction."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.statements = ListOf(Nested(Statement), min_items=1, max_items=10_000)

    def clean(self, value: Any, *, path: str, text: bool = False) -> list[Query]:
        if isinstance(value, dict) and set(value) == {"batch"}:
            value = value["batch"]
        entries = value if isinstance(value, list) else [value]
        if not entries:
            raise InvalidInput("Send at least one query.")
        checked = self.statements.clean(entries, path="batch")
        return [Query(sql=s.sql, params=s.params) for s in checked]

    def schema(self) -> Schema:
        one = Statement.schema()
        many = self.statements.schema()
        batch = {
            "type": "object",
            "required": ["batch"],
            "properties": {"batch": many},
            "additionalProperties": False,
        }
        return {"anyOf": [one, batch, many], "description": self.__doc__}


class KVBulkGet(Input):
    """A read of many keys: what ``kv bulk get`` and the binding's
    ``get([...keys])`` send."""

    unknown = "ignore"  # workerd's own wire shape, which may grow
    keys = ListOf(Text(max_length=kv.KEY_MAX_BYTES), max_items=100, default=[])
    type = Text(choices=("text", "json"), default="text")
    with_metadata = Boolean(key="withMetadata", default=False)
