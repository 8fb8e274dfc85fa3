"""Reads shared by pages, the API and admin. Query counts do not grow with data."""

import json
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

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
)


def accounts_owned_by(*, user: User) -> QuerySet[CloudAccount]:
    return CloudAccount.objects.filter(owner=user).order_by("-claimed_at")


def owned_account(*, user: User, account_id: str) -> CloudAccount | None:
    return CloudAccount.objects.filter(owner=user, pk=account_id).first()


def claim_link_for_key(*, key: str) -> ClaimLink | None:
    """The link a raw claim key opens, with its account: one query."""
    return (
        ClaimLink.objects.select_related("account")
        .filter(key_hash=tokens.hash_secret(key))
        .first()
    )


def usable_tokens(*, account_id: str, now: datetime) -> list[ApiToken]:
    return list(ApiToken.objects.active(now).filter(account_id=account_id))


def preview_url(*, script: str, subdomain: str) -> str:
    """Where a Worker is served: a host of its own on the preview domain."""
    host = f"{script}.{subdomain}.{settings.CLAIMPORTAL_PREVIEW_DOMAIN}"
    return settings.CLAIMPORTAL_PREVIEW_BASE_URL.format(host=host)


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


# Binding types as Cloudflare's upload metadata names them: a label for people
# and the field that names what the binding points at.
BINDING_KINDS: dict[str, tuple[str, str | None]] = {
    "kv_namespace": ("KV namespace", "namespace_id"),
    "d1": ("D1 database", "id"),
    "durable_object_namespace": ("Durable Object", "class_name"),
    "queue": ("Queue producer", "queue_name"),
    "assets": ("Static assets", None),
    "hyperdrive": ("Hyperdrive", "id"),
    "mtls_certificate": ("mTLS certificate", "certificate_id"),
    "r2_bucket": ("R2 bucket", "bucket_name"),
    "service": ("Service", "service"),
    "analytics_engine": ("Analytics Engine", "dataset"),
    "workflow": ("Workflow", "workflow_name"),
    "plain_text": ("Variable", None),
    "json": ("Variable", None),
    "secret_text": ("Secret", None),
}
VAR_TYPES = {"plain_text", "json"}
SECRET_TYPES = {"secret_text", "secret_key"}


def _binding(raw: dict, names: dict[str, str]) -> Binding:
    kind = str(raw.get("type", ""))
    label, target_field = BINDING_KINDS.get(kind, (kind.replace("_", " "), None))
    target = ""
    if target_field:
        target = str(raw.get(target_field) or raw.get("database_id") or "")
        target = names.get(target, target)
    return Binding(name=str(raw.get("name", "")), kind=label, target=target)


def _asset_totals(assets: dict) -> tuple[int, int]:
    manifest = assets.get("manifest") if isinstance(assets, dict) else None
    if not isinstance(manifest, dict):
        return 0, 0
    size = sum(
        int(entry.get("size") or 0)
        for entry in manifest.values()
        if isinstance(entry, dict)
    )
    return len(manifest), size


# The inventory is read with SQL written out, in two statements: building them
# with the ORM cost more than the database took to run them, and the first view
# of a claim page is mostly this. Plain SQL that PostgreSQL and SQLite both
# read; its values arrive as each driver gives them, so _json and _moment
# bring them to one form.
_SCRIPTS_SQL = """
SELECT s.id, s.account_id, s.name, s.workers_dev_enabled, s.cron_schedules,
    (SELECT MAX(d.created_at) FROM accounts_workerdeployment d
     WHERE d.script_id = s.id),
    v.created_at, v.compatibility_date, v.compatibility_flags, v.bindings, v.assets
FROM accounts_workerscript s
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


def _fetch(sql: str, account_ids: list[str]) -> list[tuple]:
    """The rows of ``sql`` with its {accounts} lists made of ``account_ids``."""
    params = {f"account{i}": account_id for i, account_id in enumerate(account_ids)}
    placeholders = ", ".join(f"%({name})s" for name in params)
    with connection.cursor() as cursor:
        cursor.execute(sql.format(accounts=placeholders), params)
        return cursor.fetchall()


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _moment(value: Any) -> datetime | None:
    """A stored time, aware (SQLite gives text or naive times, in UTC)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value


def inventories(*, accounts: list[CloudAccount]) -> dict[str, Inventory]:
    """What each account holds, by account id: two queries however many
    accounts and resources there are."""
    result = {account.pk: Inventory() for account in accounts}
    if not accounts:
        return result
    ids = list(result)
    subdomains = {account.pk: account.subdomain for account in accounts}
    scripts = _fetch(_SCRIPTS_SQL, ids)
    resources = _fetch(_RESOURCES_SQL, ids)
    script_names = {str(script[0]): script[2] for script in scripts}

    secrets: dict[str, list[str]] = defaultdict(list)
    consumers: dict[str, list[str]] = defaultdict(list)
    producers: dict[tuple[str, str], list[str]] = defaultdict(list)
    for _, account_id, name, *_, bindings, _ in scripts:
        for raw in _json(bindings) or []:
            if isinstance(raw, dict) and raw.get("type") == "queue":
                producers[account_id, str(raw.get("queue_name"))].append(name)
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
        name,
        previews,
        crons,
        last_deployed_at,
        version_created_at,
        compatibility_date,
        compatibility_flags,
        bindings,
        assets,
    ) in scripts:
        bindings = [b for b in _json(bindings) or [] if isinstance(b, dict)]
        files, size = _asset_totals(_json(assets) or {})
        secret_names = set(secrets.get(str(script_id), []))
        secret_names.update(
            str(b.get("name")) for b in bindings if b.get("type") in SECRET_TYPES
        )
        result[account_id].workers.append(
            WorkerItem(
                name=name,
                preview_url=(
                    preview_url(script=name, subdomain=subdomains[account_id])
                    if previews
                    else None
                ),
                last_deployed_at=_moment(last_deployed_at)
                or _moment(version_created_at),
                compatibility_date=compatibility_date or "",
                compatibility_flags=list(_json(compatibility_flags) or []),
                bindings=[_binding(b, names) for b in bindings],
                var_names=[
                    str(b.get("name")) for b in bindings if b.get("type") in VAR_TYPES
                ],
                secret_names=sorted(secret_names),
                asset_files=files,
                asset_bytes=size,
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
    return result


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
WHERE s.account_id = %(account)s
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
    WHERE s.account_id = %(account)s
) recent
WHERE newest <= %(events)s
ORDER BY script_id, newest
"""


def worker_activity(*, account: CloudAccount, events: int = 10) -> list[WorkerActivity]:
    """Each Worker's modules (source capped at CLAIMPORTAL_MODULE_SOURCE_BYTES)
    and its ``events`` most recent events, newest first: two queries."""
    cap = settings.CLAIMPORTAL_MODULE_SOURCE_BYTES
    params: dict[str, int | str] = {
        "account": account.pk,
        "cap": cap,
        "events": events,
    }
    with connection.cursor() as cursor:
        cursor.execute(_MODULES_SQL, params)
        rows = cursor.fetchall()
        cursor.execute(_EVENTS_SQL, params)
        recent: dict[Any, list[EventItem]] = defaultdict(list)
        for script_id, at, data in cursor.fetchall():
            recent[script_id].append(_event_item(at, data))
    workers: dict[Any, WorkerActivity] = {}
    for script_id, script, name, content_type, size, head in rows:
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
