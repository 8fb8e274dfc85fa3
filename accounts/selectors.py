"""Reads shared by pages, the API and admin. Query counts do not grow with data."""

import functools
import hashlib
import json
import re
import uuid
import weakref
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, cast

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet, Sum
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts import tokens
from accounts.models import (
    ApiToken,
    Certificate,
    ClaimLink,
    CloudAccount,
    D1QueryStats,
    User,
    preview_url,
)


def accounts_owned_by(*, user: User) -> QuerySet[CloudAccount]:
    return CloudAccount.objects.filter(owner=user).order_by("-claimed_at")


def owned_account(*, user: User, account_id: str) -> CloudAccount | None:
    return CloudAccount.objects.filter(owner=user, pk=account_id).first()


def usable_tokens(*, account_id: str, now: datetime) -> list[ApiToken]:
    return list(ApiToken.objects.active(now).filter(account_id=account_id))


# --- Reads that share one round trip to the database -------------------------------


@dataclass(frozen=True)
class Read[T]:
    """Statements of SQL with their parameters, and what to make of their rows.
    Reads given to ``read_together`` share one round trip to the database."""

    statements: list[tuple[str, dict[str, Any]]]
    build: Callable[..., T]  # called with each statement's rows, in order


def read_together(*reads: Read[Any]) -> list[Any]:
    """What each read makes, in order. On PostgreSQL the statements of all of
    them go in one message and come back as a result set each, so a page that
    needs several reads waits for the database once."""
    rows = iter(_rows_of([s for read in reads for s in read.statements]))
    return [read.build(*[next(rows) for _ in read.statements]) for read in reads]


_PARAMETER = re.compile(r"%\((\w+)\)s")


def _rows_of(statements: list[tuple[str, dict[str, Any]]]) -> list[list[tuple]]:
    if not statements:
        return []
    with connection.cursor() as cursor:
        if not _sends_together():
            results = []
            for sql, params in statements:
                cursor.execute(sql, params)
                results.append(cursor.fetchall())
            return results
        # Django binds parameters on the client (its default), which puts them
        # in the text; PostgreSQL's simple protocol takes several statements in
        # one text. Each runs as a statement prepared on this connection:
        # planning them anew cost more than running them. Those not prepared
        # yet are prepared in the same text.
        prepared = _PREPARED.get(connection.connection, set())
        texts = ["DEALLOCATE ALL"] if prepared is None else []
        prepared = prepared or set()
        merged: dict[str, Any] = {}
        shown = [False] * len(texts)  # which results are an EXECUTE's rows
        preparing: set[str] = set()
        for i, (sql, params) in enumerate(statements):
            name, prepare, order = _prepared_form(sql)
            if name not in prepared and name not in preparing:
                texts.append(prepare)
                shown.append(False)
                preparing.add(name)
            arguments = ", ".join(f"%(s{i}_{p})s" for p in order)
            texts.append(f"EXECUTE {name}({arguments})" if order else f"EXECUTE {name}")
            shown.append(True)
            merged.update({f"s{i}_{p}": params[p] for p in order})
        # Until this text has run, which of its statements were prepared is
        # not known (PREPARE outlives a rollback): the next text starts over.
        _PREPARED[connection.connection] = None
        cursor.execute(";\n".join(texts), merged)
        results = []
        for has_rows in shown:
            if has_rows:
                results.append(cursor.fetchall())
            cursor.nextset()
        _PREPARED[connection.connection] = prepared | preparing
        return results


# The names prepared on each connection (None: not known, so none are kept).
# Django binds parameters on the client, so ours are its only prepared
# statements, and DEALLOCATE ALL drops nothing else.
_PREPARED: "weakref.WeakKeyDictionary[Any, set[str] | None]" = (
    weakref.WeakKeyDictionary()
)


@functools.lru_cache(maxsize=256)
def _prepared_form(sql: str) -> tuple[str, str, tuple[str, ...]]:
    """A name for the statement, the PREPARE that makes it, and the names of
    its parameters in the order the prepared statement numbers them."""
    order: list[str] = []

    def number(match: re.Match) -> str:
        if match[1] not in order:
            order.append(match[1])
        return f"${order.index(match[1]) + 1}"

    text = _PARAMETER.sub(number, sql)
    name = "read_" + hashlib.sha256(text.encode()).hexdigest()[:20]
    return name, f"PREPARE {name} AS {text}", tuple(order)


def _sends_together() -> bool:
    return connection.vendor == "postgresql" and not connection.settings_dict[
        "OPTIONS"
    ].get("server_side_binding")


# --- The claim link, and the accounts a read is about ----------------------------


def claim_link_for_key(*, key: str) -> ClaimLink | None:
    """The link a raw claim key opens, with its account: one query."""
    return read_together(claim_link_read(key=key))[0]


def claim_link_read(*, key: str) -> Read[ClaimLink | None]:
    """The link a raw claim key opens, with its account, as a read that can
    go with reads of what the account holds (``Accounts.of_claim_key``)."""
    sql, _ = _link_with_account_select()
    return Read([(sql, {"key_hash": tokens.hash_secret(key)})], _link_from)


def _link_from(rows: list[tuple]) -> ClaimLink | None:
    """What select_related("account") makes of the row, its values through
    the converters the ORM would apply."""
    if not rows:
        return None
    _, columns = _link_with_account_select()
    values = list(rows[0])
    for i, (column, converters) in enumerate(columns):
        for convert in converters:
            values[i] = convert(values[i], column, connection)
    link_fields = [f.attname for f in ClaimLink._meta.concrete_fields]
    account_fields = [f.attname for f in CloudAccount._meta.concrete_fields]
    link = ClaimLink.from_db(connection.alias, link_fields, values[: len(link_fields)])
    link.account = CloudAccount.from_db(
        connection.alias, account_fields, values[len(link_fields) :]
    )
    return link


# select_related("account") in SQL made once from the two models: building
# that query on every claim page cost more than running it.
@functools.cache
def _link_with_account_select() -> tuple[str, list[tuple[Any, list]]]:
    quote = connection.ops.quote_name
    link, account = quote(ClaimLink._meta.db_table), quote(CloudAccount._meta.db_table)
    columns = [
        field.get_col(meta.db_table)
        for meta in (ClaimLink._meta, CloudAccount._meta)
        for field in meta.concrete_fields
    ]
    selected = ", ".join(
        f"{quote(c.alias)}.{quote(cast(str, c.target.column))}" for c in columns
    )
    # Names from the models' metadata only; the key's hash is a parameter.
    sql = (
        f"SELECT {selected} FROM {link} JOIN {account}"  # noqa: S608
        f" ON {account}.{quote(cast(str, CloudAccount._meta.pk.column))}"
        f" = {link}.account_id"
        f" WHERE {link}.key_hash = %(key_hash)s"
    )
    return sql, [
        (
            column,
            connection.ops.get_db_converters(column)
            + column.get_db_converters(connection),
        )
        for column in columns
    ]


@dataclass(frozen=True)
class Accounts:
    """The accounts a read is about, as SQL that gives their ids: by id, or
    the account a claim key's link opens, so that the claim page reads the
    link and what its account holds in one round trip."""

    sql: str
    params: dict[str, Any]

    @classmethod
    def by_id(cls, ids: list[str]) -> "Accounts":
        # Padded to a power of two with the last id again (IN takes repeats):
        # each number of ids is a statement to prepare on each connection, so
        # a person with 3 accounts and one with 4 share theirs.
        if ids:
            ids = ids + ids[-1:] * ((1 << (len(ids) - 1).bit_length()) - len(ids))
        params = {f"account{i}": account_id for i, account_id in enumerate(ids)}
        return cls(", ".join(f"%({name})s" for name in params) or "NULL", params)

    @classmethod
    def of_claim_key(cls, key: str) -> "Accounts":
        return cls(
            "SELECT account_id FROM accounts_claimlink WHERE key_hash = %(key_hash)s",
            {"key_hash": tokens.hash_secret(key)},
        )


# --- The inventory: everything a cloud account holds, as the claim page shows it --


@dataclass(frozen=True)
class Binding:
    name: str
    kind: str  # a label for people, e.g. "KV namespace"
    target: str  # what it points at, never a value


@dataclass(frozen=True)
class WorkerItem:
    name: str
    preview_url: str | None
    last_deployed_at: datetime | None
    compatibility_date: str
    compatibility_flags: list[str]
    bindings: list[Binding]
    var_names: list[str]
    secret_names: list[str]
    asset_files: int
    asset_bytes: int
    cron_schedules: list[str]


@dataclass(frozen=True)
class KVItem:
    name: str
    key_count: int


@dataclass(frozen=True)
class D1Item:
    name: str
    table_count: int
    file_size: int


@dataclass(frozen=True)
class DurableObjectItem:
    name: str  # the class
    script: str


@dataclass(frozen=True)
class QueueItem:
    name: str
    producers: list[str]
    consumers: list[str]


@dataclass(frozen=True)
class HyperdriveItem:
    name: str
    host: str
    port: Any
    database: str
    user: str


@dataclass(frozen=True)
class CertificateItem:
    name: str
    kind: str
    issuer: str
    expires_on: datetime | None


@dataclass
class Inventory:
    workers: list[WorkerItem] = field(default_factory=list)
    kv_namespaces: list[KVItem] = field(default_factory=list)
    d1_databases: list[D1Item] = field(default_factory=list)
    durable_objects: list[DurableObjectItem] = field(default_factory=list)
    queues: list[QueueItem] = field(default_factory=list)
    hyperdrive_configs: list[HyperdriveItem] = field(default_factory=list)
    certificates: list[CertificateItem] = field(default_factory=list)

    @property
    def assets(self) -> list[WorkerItem]:
        return [w for w in self.workers if w.asset_files]

    @property
    def resource_count(self) -> int:
        return sum(
            len(part)
            for part in (
                self.workers,
                self.kv_namespaces,
                self.d1_databases,
                self.durable_objects,
                self.queues,
                self.hyperdrive_configs,
                self.certificates,
            )
        )


# Binding types as Cloudflare's upload metadata names them, as people read them
# (what each points at: BINDING_TARGETS, worked out when a version is stored).
BINDING_KINDS: dict[str, str] = {
    "kv_namespace": "KV namespace",
    "d1": "D1 database",
    "durable_object_namespace": "Durable Object",
    "queue": "Queue producer",
    "assets": "Static assets",
    "hyperdrive": "Hyperdrive",
    "mtls_certificate": "mTLS certificate",
    "r2_bucket": "R2 bucket",
    "service": "Service",
    "analytics_engine": "Analytics Engine",
    "workflow": "Workflow",
    "plain_text": "Variable",
    "json": "Variable",
    "secret_text": "Secret",
}
VAR_TYPES = {"plain_text", "json"}
SECRET_TYPES = {"secret_text", "secret_key"}


# The inventory is read with SQL written out, in two statements: building them
# with the ORM cost more than the database took to run them, and the first view
# of a claim page is mostly this. Plain SQL that PostgreSQL and SQLite both
# read; its values arrive as each driver gives them, so _json and _moment
# bring them to one form.
_SCRIPTS_SQL = """
SELECT s.id, s.account_id, a.subdomain, s.name, s.workers_dev_enabled,
    s.cron_schedules,
    (SELECT MAX(d.created_at) FROM accounts_workerdeployment d
     WHERE d.script_id = s.id),
    v.created_at, v.compatibility_date, v.compatibility_flags, v.shown_bindings,
    v.asset_files, v.asset_bytes
FROM accounts_workerscript s
JOIN accounts_cloudaccount a ON a.id = s.account_id
LEFT JOIN accounts_workerversion v ON v.id = s.current_version_id
WHERE s.account_id IN ({accounts})
ORDER BY s.name
"""
# One row per resource, and per name a Worker or a queue carries:
# (kind, account id, parent, ref, name, n1, n2, text1, text2, moment). The
# first part sets each column's type (PostgreSQL reads a bare NULL as text).
_RESOURCES_SQL = """
SELECT 'certificate', c.account_id, NULL, c.id, c.name, 0, 0,
    c.kind, c.issuer, c.expires_on
FROM accounts_certificate c WHERE c.account_id IN ({accounts})
UNION ALL
SELECT 'kv', k.account_id, NULL, k.id, k.title,
    (SELECT COUNT(*) FROM accounts_kventry e WHERE e.namespace_id = k.id), 0,
    NULL, NULL, NULL
FROM accounts_kvnamespace k WHERE k.account_id IN ({accounts})
UNION ALL
SELECT 'd1', d.account_id, NULL, CAST(d.uuid AS varchar), d.name,
    d.table_count, d.file_size, NULL, NULL, NULL
FROM accounts_d1database d WHERE d.account_id IN ({accounts})
UNION ALL
SELECT 'queue', q.account_id, NULL, q.id, q.name, 0, 0, NULL, NULL, NULL
FROM accounts_queue q WHERE q.account_id IN ({accounts})
UNION ALL
SELECT 'hyperdrive', h.account_id, NULL, h.id, h.name, 0, 0,
    CAST(h.origin AS text), NULL, NULL
FROM accounts_hyperdriveconfig h WHERE h.account_id IN ({accounts})
UNION ALL
SELECT 'do', o.account_id, CAST(o.script_id AS varchar), o.id, o.class_name,
    0, 0, NULL, NULL, NULL
FROM accounts_durableobjectnamespace o WHERE o.account_id IN ({accounts})
UNION ALL
SELECT 'secret', s.account_id, CAST(s.id AS varchar), NULL, x.name,
    0, 0, NULL, NULL, NULL
FROM accounts_workersecret x
JOIN accounts_workerscript s ON s.id = x.script_id
WHERE s.account_id IN ({accounts})
UNION ALL
SELECT 'consumer', q.account_id, q.id, NULL, c.script_name, 0, 0, NULL, NULL, NULL
FROM accounts_queueconsumer c
JOIN accounts_queue q ON q.id = c.queue_id
WHERE q.account_id IN ({accounts})
"""


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _moment(value: Any) -> datetime | None:
    """A stored time, aware (SQLite gives text or naive times, in UTC)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value


def inventories_read(*, accounts: Accounts) -> Read[dict[str, Inventory]]:
    """What each account holds, by account id (an account that holds nothing
    is left out): two statements however many accounts and resources."""
    return Read(
        [
            (sql.format(accounts=accounts.sql), accounts.params)
            for sql in (_SCRIPTS_SQL, _RESOURCES_SQL)
        ],
        _inventories_from,
    )


def inventories(*, accounts: list[CloudAccount]) -> dict[str, Inventory]:
    if not accounts:
        return {}
    ids = [account.pk for account in accounts]
    (found,) = read_together(inventories_read(accounts=Accounts.by_id(ids)))
    return {account_id: found.get(account_id, Inventory()) for account_id in ids}


def _inventories_from(
    scripts: list[tuple], resources: list[tuple]
) -> dict[str, Inventory]:
    result: dict[str, Inventory] = defaultdict(Inventory)
    script_names = {str(script[0]): script[3] for script in scripts}
    # A version's bindings as [type, name, target] (version_summary).
    bindings_of = {script[0]: _json(script[10]) or [] for script in scripts}

    secrets: dict[str, list[str]] = defaultdict(list)
    consumers: dict[str, list[str]] = defaultdict(list)
    producers: dict[tuple[str, str], list[str]] = defaultdict(list)
    for script_id, account_id, _, name, *_ in scripts:
        for kind, _, target in bindings_of[script_id]:
            if kind == "queue":
                producers[account_id, target].append(name)
    # Bindings name resources by id; people know them by name.
    names: dict[str, str] = {}
    for kind, account_id, parent, ref, name, n1, n2, text1, text2, moment in resources:
        found = result[account_id]
        if kind == "secret":
            secrets[parent].append(name)
        elif kind == "consumer":
            consumers[parent].append(name or "HTTP pull")
        elif kind == "do":
            found.durable_objects.append(DurableObjectItem(name, script_names[parent]))
        elif kind == "kv":
            names[ref] = name or ref
            found.kv_namespaces.append(KVItem(name, n1))
        elif kind == "d1":
            ref = str(uuid.UUID(ref))  # as bindings write it, whatever the driver
            names[ref] = name or ref
            found.d1_databases.append(D1Item(name, n1, n2))
        elif kind == "hyperdrive":
            # The origin holds host, port, database and user; the password is apart.
            names[ref] = name or ref
            origin = _json(text1)
            origin = origin if isinstance(origin, dict) else {}
            found.hyperdrive_configs.append(
                HyperdriveItem(
                    name=name,
                    host=str(origin.get("host", "")),
                    port=origin.get("port", ""),
                    database=str(origin.get("database", "")),
                    user=str(origin.get("user", "")),
                )
            )
        elif kind == "certificate":
            names[ref] = name or ref
            found.certificates.append(
                CertificateItem(
                    name=name or ref,
                    kind=Certificate.Kind(text1).label,
                    issuer=text2 or "",
                    expires_on=_moment(moment),
                )
            )
    for kind, account_id, _, ref, name, *_ in resources:
        if kind == "queue":
            result[account_id].queues.append(
                QueueItem(
                    name=name,
                    producers=producers.get((account_id, name), []),
                    consumers=consumers.get(ref, []),
                )
            )

    for (
        script_id,
        account_id,
        subdomain,
        name,
        previews,
        crons,
        last_deployed_at,
        version_created_at,
        compatibility_date,
        compatibility_flags,
        _,
        asset_files,
        asset_bytes,
    ) in scripts:
        bindings = bindings_of[script_id]
        secret_names = set(secrets.get(str(script_id), []))
        secret_names.update(name for kind, name, _ in bindings if kind in SECRET_TYPES)
        result[account_id].workers.append(
            WorkerItem(
                name=name,
                preview_url=(
                    preview_url(script_name=name, subdomain=subdomain)
                    if previews
                    else None
                ),
                last_deployed_at=_moment(last_deployed_at)
                or _moment(version_created_at),
                compatibility_date=compatibility_date or "",
                compatibility_flags=[str(f) for f in _json(compatibility_flags) or []],
                bindings=[
                    Binding(
                        name=binding_name,
                        kind=BINDING_KINDS.get(kind) or kind.replace("_", " "),
                        target=names.get(target, target),
                    )
                    for kind, binding_name, target in bindings
                ],
                var_names=[n for kind, n, _ in bindings if kind in VAR_TYPES],
                secret_names=sorted(secret_names),
                asset_files=asset_files or 0,
                asset_bytes=asset_bytes or 0,
                cron_schedules=[
                    str(c.get("cron", c)) if isinstance(c, dict) else str(c)
                    for c in _json(crons) or []
                ],
            )
        )
    for found in result.values():
        for part in (
            found.kv_namespaces,
            found.d1_databases,
            found.queues,
            found.hyperdrive_configs,
            found.certificates,
            found.durable_objects,
        ):
            part.sort(key=attrgetter("name"))
    return dict(result)


def inventory(*, account: CloudAccount) -> Inventory:
    return inventories(accounts=[account])[account.pk]


# --- What each Worker is and does: its code and its recent events ----------------

TEXT_MODULE_TYPES = ("javascript", "text/", "json", "python")


@dataclass(frozen=True)
class ModuleItem:
    name: str
    content_type: str
    size: int
    source: str  # "" for binary modules (wasm, data)
    truncated: bool


@dataclass(frozen=True)
class EventItem:
    at: datetime
    outcome: str
    summary: str  # "GET https://… 200", "cron */5 * * * *", "queue jobs (3 messages)"
    lines: list[tuple[str, str]]  # (level, text): console lines, then exceptions


@dataclass(frozen=True)
class WorkerActivity:
    name: str
    modules: list[ModuleItem]
    events: list[EventItem]


def _summary(data: dict[str, Any]) -> str:
    event = data.get("event")
    if not isinstance(event, dict):
        return "invocation"
    if isinstance(event.get("request"), dict):
        request = event["request"]
        status = (event.get("response") or {}).get("status", "")
        return f"{request.get('method', '')} {request.get('url', '')} {status}".strip()
    if "cron" in event:
        return f"cron {event.get('cron')}"
    if "queue" in event:
        n = event.get("batchSize")
        return f"queue {event.get('queue')} ({n} message{'' if n == 1 else 's'})"
    return "invocation"


def _log_text(message: Any) -> str:
    parts = message if isinstance(message, list) else [message]
    return " ".join(p if isinstance(p, str) else json.dumps(p) for p in parts)


def _event_item(at: Any, data: Any) -> EventItem:
    data = _json(data)
    data = data if isinstance(data, dict) else {}
    lines = [
        (str(log.get("level", "log")), _log_text(log.get("message")))
        for log in data.get("logs") or []
        if isinstance(log, dict)
    ] + [
        ("exception", f"{e.get('name', 'Error')}: {e.get('message', '')}")
        for e in data.get("exceptions") or []
        if isinstance(e, dict)
    ]
    moment = _moment(at)
    assert moment is not None  # an event's created_at is NOT NULL
    return EventItem(
        at=moment,
        outcome=str(data.get("outcome", "")),
        summary=_summary(data),
        lines=lines,
    )


# Written out as the inventory is, and read on every view of a claim page.
# Each Worker, with each module of its current version: its size, and only its
# first bytes (the cap), which is all a page shows.
_MODULES_SQL = """
SELECT s.id, s.name, m.name, m.content_type, LENGTH(m.content),
    SUBSTR(m.content, 1, %(cap)s)
FROM accounts_workerscript s
LEFT JOIN accounts_workermodule m ON m.version_id = s.current_version_id
WHERE s.account_id IN ({accounts})
ORDER BY s.name, s.id, m.id
"""
# The newest events of each Worker, counted among the at most
# CLAIMPORTAL_EVENTS_KEPT that each Worker keeps.
_EVENTS_SQL = """
SELECT script_id, created_at, data FROM (
    SELECT e.script_id, e.created_at, e.data,
        ROW_NUMBER() OVER (PARTITION BY e.script_id ORDER BY e.id DESC) AS newest
    FROM accounts_workerevent e
    JOIN accounts_workerscript s ON s.id = e.script_id
    WHERE s.account_id IN ({accounts})
) recent
WHERE newest <= %(events)s
ORDER BY script_id, newest
"""


def worker_activity_read(
    *, account: Accounts, events: int = 10
) -> Read[list[WorkerActivity]]:
    """Each Worker of the account (one) with its modules (source capped at
    CLAIMPORTAL_MODULE_SOURCE_BYTES) and its ``events`` most recent events,
    newest first: two statements."""
    params: dict[str, Any] = {
        **account.params,
        "cap": settings.CLAIMPORTAL_MODULE_SOURCE_BYTES,
        "events": events,
    }
    return Read(
        [
            (sql.format(accounts=account.sql), params)
            for sql in (_MODULES_SQL, _EVENTS_SQL)
        ],
        functools.partial(_activity_from, params["cap"]),
    )


def worker_activity(*, account: CloudAccount, events: int = 10) -> list[WorkerActivity]:
    read = worker_activity_read(account=Accounts.by_id([account.pk]), events=events)
    return read_together(read)[0]


def _activity_from(
    cap: int, modules: list[tuple], events: list[tuple]
) -> list[WorkerActivity]:
    recent: dict[Any, list[EventItem]] = defaultdict(list)
    for script_id, at, data in events:
        recent[script_id].append(_event_item(at, data))
    workers: dict[Any, WorkerActivity] = {}
    for script_id, script, name, content_type, size, head in modules:
        if script_id not in workers:
            workers[script_id] = WorkerActivity(script, [], recent.get(script_id, []))
        if name is None:
            continue  # a Worker without a current version
        text = any(t in content_type for t in TEXT_MODULE_TYPES)
        source = bytes(head).decode("utf-8", "replace") if text else ""
        workers[script_id].modules.append(
            ModuleItem(name, content_type, size or 0, source, text and size > cap)
        )
    return list(workers.values())


@dataclass(frozen=True)
class D1Usage:
    name: str
    queries: int
    rows_read: int
    rows_written: int
    duration_ms: float


def d1_usage(*, account_id: str, since: datetime) -> list[D1Usage]:
    """Each D1 database's queries, rows and time since ``since`` (the figures
    wrangler d1 info and d1 insights read), for the owner's account page."""
    totals = (
        D1QueryStats.objects.filter(database__account_id=account_id, hour__gte=since)
        .values("database__name")
        .annotate(
            queries=Sum("count"),
            read=Sum("rows_read"),
            written=Sum("rows_written"),
            duration=Sum("duration_ms"),
        )
        .order_by("database__name")
    )
    return [
        D1Usage(
            name=row["database__name"],
            queries=row["queries"],
            rows_read=row["read"],
            rows_written=row["written"],
            duration_ms=round(row["duration"], 1),
        )
        for row in totals
    ]
