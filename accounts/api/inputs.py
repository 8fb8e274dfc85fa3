"""Declared inputs: what an endpoint accepts, written once.

An endpoint names an ``Input`` class for its body (and one for its query
string); the kit parses the request with it before the handler runs, so the
handler reads typed attributes and hands services plain keyword arguments. The
same declaration gives the OpenAPI schema, so the document cannot promise more
or less than the code takes.

Every refusal is ``InvalidInput`` (code 10001) naming the field by its wire
path (``origin.port``). JSON ``null`` in an optional field means "not given",
as Cloudflare's own API reads it.
"""

import base64
import binascii
import copy
import json
import re
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Self, overload

from accounts.exceptions import DomainError, InvalidInput
from accounts.services.validation import clean_json, clean_text, whole_number

Schema = dict[str, Any]


# The code a refused input answers with; the document states it.
INVALID_INPUT_CODE = InvalidInput.code


def decode_json(raw: bytes) -> Any:
    """A request body as JSON, whatever Content-Type it was labelled with.
    Raises InvalidInput."""
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidInput("The request body is not valid JSON.") from exc


def _refuse_constant(name: str) -> None:
    # NaN and Infinity are not JSON, and PostgreSQL's jsonb cannot store them.
    raise ValueError(f"{name} is not a JSON value")


class Field[T]:
    """One field of an input: how to check a value, and how to describe it.

    ``key`` is the wire name when it is not a Python name (``withMetadata``);
    ``text`` fields come from a query string, where every value is a string.
    ``error_code`` replaces 10001 where a client branches on a code of its own
    (wrangler reads 1035 for a malformed event code).
    """

    json_type: ClassVar[str | list[str] | None] = None

    def __init__(
        self,
        *,
        required: bool = False,
        default: Any = None,
        key: str | None = None,
        description: str = "",
        error_code: int | None = None,
    ) -> None:
        self.error_code = error_code
        self.required = required
        self.default = default
        self.key: str = key or ""
        self.description = description
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.key = self.key or name

    @overload
    def __get__(self, obj: None, owner: type) -> Self: ...
    @overload
    def __get__(self, obj: object, owner: type) -> T: ...
    def __get__(self, obj: object | None, owner: type) -> Any:
        if obj is None:
            return self
        return obj.__dict__["_values"][self.name]

    def clean(self, value: Any, *, path: str, text: bool = False) -> T:
        raise NotImplementedError

    def schema(self) -> Schema:
        schema: Schema = {"type": self.json_type} if self.json_type else {}
        schema.update(self.constraints())
        if self.description:
            schema["description"] = self.description
        return schema

    def constraints(self) -> Schema:
        return {}

    def example(self) -> Any:
        """A value this field accepts (the OpenAPI test sends it)."""
        raise NotImplementedError


class Text(Field[str]):
    json_type = "string"

    def __init__(
        self,
        *,
        max_length: int | Callable[[], int] = 1024,
        blank: bool = False,
        choices: tuple[str, ...] | None = None,
        pattern: str | None = None,
        storable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.storable = storable  # False: any string (SQL for SQLite says why not)
        self.max_length = max_length
        self.blank = blank
        self.choices = choices
        self.pattern = pattern

    def clean(self, value: Any, *, path: str, text: bool = False) -> str:
        if not self.storable:
            if not isinstance(value, str):
                raise InvalidInput(f"'{path}' must be a string.")
            return value
        cleaned = clean_text(
            value, field=path, max_length=self.limit(), required=not self.blank
        )
        if self.choices is not None and cleaned not in self.choices:
            raise InvalidInput(f"'{path}' must be one of: {', '.join(self.choices)}.")
        if self.pattern is not None and not re.fullmatch(self.pattern, cleaned):
            raise InvalidInput(f"'{path}' is not in the expected form.")
        return cleaned

    def constraints(self) -> Schema:
        if self.choices is not None:
            return {"enum": list(self.choices)}
        found: Schema = {"maxLength": self.limit()}
        if not self.blank:
            found["minLength"] = 1
        if self.pattern is not None:
            found["pattern"] = f"^(?:{self.pattern})$"
        return found

    def limit(self) -> int:
        """The longest text taken (a setting's value is read when asked)."""
        return self.max_length() if callable(self.max_length) else self.max_length

    def example(self) -> str:
        if self.choices:
            return self.choices[0]
        if self.pattern == HEX_ID:
            return "0123456789abcdef0123456789abcdef"
        return "example"


HEX_ID = "[0-9a-f]{32}"


class Base64(Text):
    """Standard base64 text, handed over decoded."""

    def clean(self, value: Any, *, path: str, text: bool = False) -> str:
        cleaned = super().clean(value, path=path, text=text)
        try:
            base64.b64decode(cleaned, validate=True)
        except (ValueError, binascii.Error) as exc:
            raise InvalidInput(f"'{path}' is not base64.") from exc
        return cleaned

    def constraints(self) -> Schema:
        return {**super().constraints(), "contentEncoding": "base64"}

    def example(self) -> str:
        return "ZXhhbXBsZQ=="


class Integer(Field[int]):
    json_type = "integer"

    def __init__(self, *, minimum: int = 0, maximum: int = 2**53, **kwargs: Any):
        super().__init__(**kwargs)
        self.minimum = minimum
        self.maximum = maximum

    def clean(self, value: Any, *, path: str, text: bool = False) -> int:
        if isinstance(value, str) and not text:
            raise InvalidInput(f"'{path}' must be a whole number.")
        return whole_number(
            value, field=path, minimum=self.minimum, maximum=self.maximum
        )

    def constraints(self) -> Schema:
        return {"minimum": self.minimum, "maximum": self.maximum}

    def example(self) -> int:
        return self.minimum


class Number(Field[float]):
    """A JSON number, whole or not (a deployment's percentage)."""

    json_type = "number"

    def __init__(self, *, minimum: float = 0, maximum: float = 2**53, **kwargs: Any):
        super().__init__(**kwargs)
        self.minimum = minimum
        self.maximum = maximum

    def clean(self, value: Any, *, path: str, text: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(f"'{path}' must be a number.")
        if not self.minimum <= value <= self.maximum:
            raise InvalidInput(
                f"'{path}' must be between {self.minimum:g} and {self.maximum:g}."
            )
        return value

    def constraints(self) -> Schema:
        return {"minimum": self.minimum, "maximum": self.maximum}

    def example(self) -> float:
        return self.minimum


class Boolean(Field[bool]):
    json_type = "boolean"
    WORDS: ClassVar[dict[str, bool]] = {"true": True, "false": False}

    def clean(self, value: Any, *, path: str, text: bool = False) -> bool:
        if text and isinstance(value, str) and value.lower() in self.WORDS:
            return self.WORDS[value.lower()]
        if not isinstance(value, bool):
            raise InvalidInput(f"'{path}' must be true or false.")
        return value

    def example(self) -> bool:
        return True


class JSON(Field[Any]):
    """Any JSON value (metadata, a queue message body), up to a size, fit to
    store in a JSON column; ``max_bytes=None`` takes any value as it is (SQL
    parameters, which never reach PostgreSQL)."""

    def __init__(self, *, max_bytes: int | None = 1024 * 1024, **kwargs: Any):
        super().__init__(**kwargs)
        self.max_bytes = max_bytes

    def clean(self, value: Any, *, path: str, text: bool = False) -> Any:
        if self.max_bytes is None:
            return value
        return clean_json(value, field=path, max_bytes=self.max_bytes)

    def example(self) -> Any:
        return {"example": 1}


class JSONObject(JSON):
    """A JSON object with free keys and any values (annotations, a setting's
    own options), up to a size."""

    json_type = "object"

    def clean(self, value: Any, *, path: str, text: bool = False) -> dict:
        if not isinstance(value, dict):
            raise InvalidInput(f"'{path}' must be an object.")
        return super().clean(value, path=path, text=text)


class ListOf(Field[list]):
    json_type = "array"

    def __init__(
        self, items: Field, *, min_items: int = 0, max_items: int = 10_000, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.items = items
        self.min_items = min_items
        self.max_items = max_items

    def clean(self, value: Any, *, path: str, text: bool = False) -> list:
        if not isinstance(value, list):
            raise InvalidInput(f"'{path}' must be a list.")
        if not self.min_items <= len(value) <= self.max_items:
            raise InvalidInput(
                f"'{path}' must have {self.min_items} to {self.max_items} items."
            )
        return [
            self.items.clean(item, path=f"{path}[{n}]") for n, item in enumerate(value)
        ]

    def constraints(self) -> Schema:
        found: Schema = {"items": self.items.schema(), "maxItems": self.max_items}
        if self.min_items:
            found["minItems"] = self.min_items
        return found

    def example(self) -> list:
        return [self.items.example()] * max(1, self.min_items)


class MapOf(Field[dict]):
    """An object with free keys (a Worker's vars), each value checked;
    ``nullable`` values may be null too (a merge patch's "delete this").
    ``keys`` checks each key (by default a storable text of up to 1024)."""

    json_type = "object"

    def __init__(
        self,
        values: Field,
        *,
        max_items: int = 1000,
        nullable: bool = False,
        keys: Text | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.keys = keys or Text(max_length=1024)
        self.values = values
        self.max_items = max_items
        self.nullable = nullable

    def clean(self, value: Any, *, path: str, text: bool = False) -> dict:
        if not isinstance(value, dict):
            raise InvalidInput(f"'{path}' must be an object.")
        if len(value) > self.max_items:
            raise InvalidInput(f"'{path}' has more than {self.max_items} entries.")
        return {
            self.keys.clean(k, path=path): (
                None
                if v is None and self.nullable
                else self.values.clean(v, path=f"{path}.{k}")
            )
            for k, v in value.items()
        }

    def constraints(self) -> Schema:
        values = self.values.schema()
        if self.nullable:
            values = {"anyOf": [values, {"type": "null"}]}
        found: Schema = {
            "additionalProperties": values,
            "maxProperties": self.max_items,
        }
        keys = self.keys.constraints()
        if keys:
            found["propertyNames"] = {"type": "string", **keys}
        return found

    def example(self) -> dict:
        return {"example": self.values.example()}


class Nested[I: "Input"](Field[I]):
    json_type = "object"

    def __init__(self, input_class: type[I], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.input_class = input_class

    def clean(self, value: Any, *, path: str, text: bool = False) -> I:
        return self.input_class.parse(value, path=path)

    def schema(self) -> Schema:
        schema = self.input_class.schema()
        if self.description:
            schema["description"] = self.description
        return schema

    def example(self) -> dict:
        return self.input_class.example()


class Input:
    """A declared request body or query string.

    Subclasses list ``Field`` attributes. ``unknown = "refuse"`` (the default)
    refuses a key the declaration does not name, so a typo is an error rather
    than a silent default; a wire shape that carries fields we do not use
    (Cloudflare's own payloads) says ``unknown = "ignore"`` and the document
    says so (``additionalProperties``).
    """

    fields: ClassVar[dict[str, Field]] = {}
    unknown: ClassVar[str] = "refuse"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found = dict(cls.fields)
        for name, value in vars(cls).items():
            if isinstance(value, Field):
                found[name] = value
        cls.fields = found

    def __init__(self, values: dict[str, Any], given: frozenset[str]) -> None:
        self.__dict__["_values"] = values
        self.given = given  # the wire keys the caller sent (PATCH reads them)

    @classmethod
    def parse(cls, data: Any, *, path: str = "", text: bool = False) -> Self:
        """Check ``data`` (a decoded JSON object, or a query string's dict)."""
        where = f"'{path}'" if path else "The request body"
        if not isinstance(data, dict):
            raise InvalidInput(f"{where} must be a JSON object.")
        keys = {field.key: field for field in cls.fields.values()}
        extra = sorted(set(data) - set(keys))
        if extra and cls.unknown == "refuse":
            accepted = ", ".join(sorted(keys)) or "nothing"
            raise InvalidInput(
                f"{where} has a field this endpoint does not take: "
                f"{', '.join(map(str, extra))} (it takes: {accepted})."
            )
        values: dict[str, Any] = {}
        given = set()
        for key, field in keys.items():
            wire = f"{path}.{key}" if path else key
            value = data.get(key)
            if value is None or (text and value == ""):  # ?limit= gives nothing
                if field.required:
                    missing = f"'{wire}' is required."
                    if field.error_code is None:
                        raise InvalidInput(missing)  # an enclosing field's code
                    raise DomainError(missing, code=field.error_code)
                values[field.name] = field.default
                continue
            given.add(key)
            try:
                values[field.name] = field.clean(value, path=wire, text=text)
            except InvalidInput as error:
                if field.error_code is None:
                    raise
                raise DomainError(error.message, code=field.error_code) from error
        return cls(values, frozenset(given))

    @classmethod
    def schema(cls) -> Schema:
        properties = {}
        for field in cls.fields.values():
            schema = field.schema()
            if not field.required and "type" in schema:
                schema["type"] = [schema["type"], "null"]
            properties[field.key] = schema
        described: Schema = {
            "type": "object",
            "properties": properties,
            "additionalProperties": cls.unknown != "refuse",
        }
        required = [f.key for f in cls.fields.values() if f.required]
        if required:
            described["required"] = required
        if cls.__doc__:
            described["description"] = " ".join(cls.__doc__.split())
        return described

    @classmethod
    def example(cls) -> dict[str, Any]:
        """The smallest body this input accepts: its required fields."""
        return {f.key: f.example() for f in cls.fields.values() if f.required}

    @classmethod
    def query_parameters(cls) -> Iterator[Schema]:
        """This input as OpenAPI query parameters."""
        for field in cls.fields.values():
            parameter: Schema = {
                "name": field.key,
                "in": "query",
                "required": field.required,
                "schema": field.schema(),
            }
            if field.description:
                parameter["description"] = field.description
            yield parameter

    @classmethod
    def partial(cls) -> "type[Input]":
        """The same input with every field optional and no defaults (what a
        PATCH takes: a field not sent is None, "keep it")."""
        fields = {}
        for name, field in cls.fields.items():
            optional = copy.copy(field)
            optional.required = False
            optional.default = None
            if isinstance(optional, Nested):
                optional.input_class = optional.input_class.partial()
            fields[name] = optional
        namespace: dict[str, Any] = {
            "__doc__": cls.__doc__,
            "fields": {},
            "unknown": cls.unknown,
        }
        namespace.update(fields)
        return type(f"Partial{cls.__name__}", (Input,), namespace)

    def values(self) -> dict[str, Any]:
        """Every field by its Python name, defaults filled in."""
        return dict(self.__dict__["_values"])

    def present(self) -> dict[str, Any]:
        """The fields the caller sent, by Python name, nested inputs as dicts."""
        return {
            field.name: _plain(self.__dict__["_values"][field.name])
            for field in self.fields.values()
            if field.key in self.given
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.__dict__['_values']!r})"


class Query(Input):
    """A query string: every value is text, and keys we do not read (clients
    send their own) are ignored."""

    unknown = "ignore"


def _plain(value: Any) -> Any:
    if isinstance(value, Input):
        return value.present()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
