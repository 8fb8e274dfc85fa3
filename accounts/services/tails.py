"""Live logs: the events the preview runtime traces for each Worker, and the
tails (``wrangler tail``) that stream them.

The runtime's tail Worker posts every invocation's trace (request, cron, queue
batch; its ``console`` lines and exceptions) to ``record_events``, which stores
it in wrangler's ``trace-v1`` shape with the Worker's secrets redacted; only
the most recent few per Worker are kept. A tail is a row with the filters
wrangler sent and the hash of the key in its WebSocket URL; the tail server
(``manage.py tail_server``) streams the new events that pass them.
"""

import hashlib
import ipaddress
import json
import random
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils.crypto import constant_time_compare

from accounts.exceptions import InvalidInput, NotFound
from accounts.models import (
    CloudAccount,
    WorkerEvent,
    WorkerScript,
    WorkerTail,
    WorkerVersion,
)

from . import workers
from .locking import lock_live_account

REDACTED = "[redacted]"
# Request headers whose values are never kept (Cloudflare's tail hides them too).
SENSITIVE_HEADERS = {
    "authorization",
    "cookie",
    "proxy-authorization",
    "set-cookie",
    "x-api-key",
}
OUTCOMES = {"ok", "canceled", "exception", "exceededCpu", "exceededMemory", "unknown"}
MAX_LOGS = 100
MAX_EXCEPTIONS = 20
MAX_TEXT = 4096


class TailNotFound(NotFound):
    code = 10007
    message = "This tail does not exist."


class TooManyTails(InvalidInput):
    code = 10057
    message = "This Worker has as many tails as it may have; stop one first."


@dataclass(frozen=True)
class CreatedTail:
    tail: WorkerTail
    url: str  # holds the key: shown once


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def tail_base_url() -> str:
    """Where the tail server is reached from outside: CLAIMPORTAL_TAIL_BASE_URL
    (behind the edge), or its own port on PUBLIC_BASE_URL's host."""
    if settings.CLAIMPORTAL_TAIL_BASE_URL:
        return settings.CLAIMPORTAL_TAIL_BASE_URL
    public = urlsplit(settings.PUBLIC_BASE_URL)
    host = public.hostname or "localhost"
    host = f"[{host}]" if ":" in host else host
    ws = "wss" if public.scheme == "https" else "ws"
    return f"{ws}://{host}:{settings.CLAIMPORTAL_TAIL_PORT}"


# --- filters (wrangler's TailAPIFilter list) -------------------------------------


@dataclass(frozen=True)
class TailFilter:
    """One filter of a tail, as ``wrangler tail``'s options make them: exactly
    one field is set. ``client_ip`` may say ``self``, the tail's own caller."""

    sampling_rate: float | None = None
    outcome: list[str] | None = None
    method: list[str] | None = None
    client_ip: list[str] | None = None
    query: str | None = None
    script_version: str | None = None
    header: str | None = None  # a header's name
    header_query: str | None = None  # text its value must contain


def _ip(value: str, client_ip: str) -> str:
    if value == "self":
        return client_ip
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise InvalidInput(f"{value[:64]!r} is not an IP address.") from None


def _stored_filter(given: TailFilter, *, client_ip: str) -> dict[str, Any]:
    """A filter as a tail keeps it (wrangler's TailAPIFilter, which
    ``passes_filters`` reads). Raises InvalidInput."""
    stored: dict[str, Any] = {}
    if given.sampling_rate is not None:
        if not 0 < given.sampling_rate <= 1:
            raise InvalidInput("'sampling_rate' must be more than 0, at most 1.")
        stored["sampling_rate"] = given.sampling_rate
    if given.outcome is not None:
        if set(given.outcome) - OUTCOMES:
            raise InvalidInput(f"Outcomes are {', '.join(sorted(OUTCOMES))}.")
        stored["outcome"] = given.outcome
    if given.method is not None:
        stored["method"] = [m.upper() for m in given.method]
    if given.client_ip is not None:
        stored["client_ip"] = [_ip(v, client_ip) for v in given.client_ip]
    if given.query is not None:
        stored["query"] = given.query
    if given.script_version is not None:
        stored["scriptVersion"] = given.script_version
    if given.header is not None:
        stored["header"] = {"key": given.header.lower(), "query": given.header_query}
    if len(stored) != 1:
        raise InvalidInput("Each filter must be an object with one key.")
    return stored


def _request(data: dict[str, Any]) -> dict[str, Any] | None:
    event = data.get("event")
    request = event.get("request") if isinstance(event, dict) else None
    return request if isinstance(request, dict) else None


def _passes(kind: str, value: Any, data: dict[str, Any], rng: random.Random) -> bool:
    request = _request(data)
    headers = (request or {}).get("headers") or {}
    if kind == "sampling_rate":
        return rng.random() < value
    if kind == "outcome":
        return data.get("outcome") in value
    if kind == "method":
        return request is not None and str(request.get("method")).upper() in value
    if kind == "client_ip":
        return request is not None and headers.get("cf-connecting-ip") in value
    if kind == "header":
        if request is None or value["key"] not in headers:
            return False
        return value["query"] is None or value["query"] in str(headers[value["key"]])
    if kind == "query":
        texts = [
            json.dumps(log.get("message"), ensure_ascii=False)
            for log in data.get("logs") or []
        ]
        texts += [str(e.get("message")) for e in data.get("exceptions") or []]
        return any(value in text for text in texts)
    if kind == "scriptVersion":
        return (data.get("scriptVersion") or {}).get("id") == value
    return False


def passes_filters(
    *, filters: list[dict[str, Any]], data: dict[str, Any], rng: random.Random
) -> bool:
    """Whether a tail with ``filters`` shows this event: every filter agrees."""
    return all(
        _passes(kind, value, data, rng)
        for entry in filters
        for kind, value in entry.items()
    )


# --- tails ------------------------------------------------------------------------


@transaction.atomic
def create_tail(
    *,
    account: CloudAccount,
    script_name: str,
    filters: list[TailFilter],
    client_ip: str,
    now: datetime,
) -> CreatedTail:
    """A tail of the Worker that shows what passes every one of ``filters``,
    and its WebSocket URL. Raises WorkerNotFound, InvalidInput, TooManyTails."""
    stored = [_stored_filter(f, client_ip=client_ip) for f in filters]
    lock_live_account(account_id=account.pk, now=now)
    script = (
        WorkerScript.objects.select_for_update()
        .filter(account=account, name=script_name)
        .first()
    )
    if script is None:
        raise workers.WorkerNotFound()
    script.tails.filter(expires_at__lte=now).delete()
    if script.tails.count() >= settings.CLAIMPORTAL_TAILS_PER_WORKER:
        raise TooManyTails()
    key = secrets.token_urlsafe(32)
    tail = WorkerTail.objects.create(
        script=script,
        key_hash=_key_hash(key),
        filters=stored,
        created_at=now,
        expires_at=now + settings.CLAIMPORTAL_TAIL_TTL,
    )
    return CreatedTail(tail=tail, url=f"{tail_base_url()}/tail/{tail.pk}/{key}")


def list_tails(*, account: CloudAccount, script_name: str, now: datetime):
    script = workers.get_script(account=account, name=script_name)
    return script.tails.filter(expires_at__gt=now).order_by("created_at")


def delete_tail(*, account: CloudAccount, script_name: str, tail_id: str) -> None:
    """Raises WorkerNotFound, TailNotFound."""
    script = workers.get_script(account=account, name=script_name)
    if not workers._is_uuid(tail_id) or not script.tails.filter(pk=tail_id).delete()[0]:
        raise TailNotFound()


def open_tail(*, tail_id: str, key: str, now: datetime) -> WorkerTail | None:
    """The tail a WebSocket URL names, if its key is right and it still runs."""
    if not workers._is_uuid(tail_id):
        return None
    tail = (
        WorkerTail.objects.select_related("script__account").filter(pk=tail_id).first()
    )
    if tail is None or not constant_time_compare(tail.key_hash, _key_hash(key)):
        return None
    return tail if tail_is_open(tail_id=tail_id, now=now) else None


def tail_is_open(*, tail_id: Any, now: datetime) -> bool:
    """Not deleted, not expired, and its account still serves previews."""
    tail = (
        WorkerTail.objects.select_related("script__account")
        .filter(pk=tail_id, expires_at__gt=now)
        .first()
    )
    return tail is not None and tail.script.account.is_live(now)


def latest_event_id() -> int:
    last = WorkerEvent.objects.order_by("-id").values_list("id", flat=True).first()
    return last or 0


def events_after(*, script_ids: list[int], after_id: int) -> list[WorkerEvent]:
    """The events of these scripts stored since ``after_id``, oldest first."""
    return list(
        WorkerEvent.objects.filter(script_id__in=script_ids, id__gt=after_id)
        .order_by("id")
        .only("id", "script_id", "data")[:1000]
    )


# --- recording what the runtime traced ---------------------------------------------


def _cut(value: str) -> str:
    return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…"


def _redact(value: Any, hidden: list[str]) -> Any:
    """``value`` with every secret's value replaced, in every string it holds."""
    if isinstance(value, str):
        for secret in hidden:
            value = value.replace(secret, REDACTED)
        return _cut(value)
    if isinstance(value, list):
        return [_redact(v, hidden) for v in value[:MAX_LOGS]]
    if isinstance(value, dict):
        return {
            _cut(str(k)): _redact(v, hidden) for k, v in list(value.items())[:MAX_LOGS]
        }
    if isinstance(value, bool | int | float) or value is None:
        return value
    return _redact(str(value), hidden)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return value


def _event(raw: dict[str, Any], *, version: WorkerVersion) -> dict[str, Any]:
    """One trace in wrangler's shape, from what the tail Worker sent."""
    event = raw.get("event") if isinstance(raw.get("event"), dict) else None
    request = _request(raw)
    if request is not None:
        headers = request.get("headers")
        headers = headers if isinstance(headers, dict) else {}
        request["headers"] = {
            str(k).lower(): REDACTED if str(k).lower() in SENSITIVE_HEADERS else v
            for k, v in headers.items()
        }
    logs = [
        {
            "message": log.get("message")
            if isinstance(log.get("message"), list)
            else [log.get("message")],
            "level": str(log.get("level") or "log"),
            "timestamp": _number(log.get("timestamp")),
        }
        for log in (raw.get("logs") or [])[:MAX_LOGS]
        if isinstance(log, dict)
    ]
    exceptions = [
        {
            "name": str(e.get("name") or "Error"),
            "message": e.get("message"),
            "timestamp": _number(e.get("timestamp")),
            **({"stack": str(e["stack"])} if e.get("stack") else {}),
        }
        for e in (raw.get("exceptions") or [])[:MAX_EXCEPTIONS]
        if isinstance(e, dict)
    ]
    outcome = raw.get("outcome")
    return {
        "outcome": outcome if outcome in OUTCOMES else "unknown",
        "scriptName": version.script.name,
        "scriptVersion": {"id": str(version.pk)},
        "entrypoint": raw.get("entrypoint")
        if isinstance(raw.get("entrypoint"), str)
        else None,
        "exceptions": exceptions,
        "logs": logs,
        "eventTimestamp": _number(raw.get("eventTimestamp")),
        "event": event,
        "truncated": bool(raw.get("truncated")),
    }


def _fit(data: dict[str, Any]) -> dict[str, Any]:
    """Keep an event under CLAIMPORTAL_EVENT_MAX_BYTES: drop logs from the end."""
    limit = settings.CLAIMPORTAL_EVENT_MAX_BYTES
    while len(json.dumps(data)) > limit and (data["logs"] or data["exceptions"]):
        (data["logs"] or data["exceptions"]).pop()
        data["truncated"] = True
    if len(json.dumps(data)) > limit:
        data["event"] = None
    return data


def record_events(*, version: WorkerVersion, traces: Any, now: datetime) -> int:
    """Store what the runtime traced for ``version`` (a list of traces), its
    secrets redacted, and keep only CLAIMPORTAL_EVENTS_KEPT per Worker.
    Returns how many were stored; anything that is not a trace is skipped."""
    if not isinstance(traces, list):
        return 0
    hidden = sorted(
        (value for _kind, value in (version.secrets or {}).values() if value),
        key=len,
        reverse=True,  # a secret that contains another goes first
    )
    rows = [
        WorkerEvent(
            script_id=version.script_id,
            version_id=str(version.pk),
            created_at=now,
            data=_fit(_redact(_event(raw, version=version), hidden)),
        )
        for raw in traces[:50]
        if isinstance(raw, dict)
    ]
    WorkerEvent.objects.bulk_create(rows)
    kept = settings.CLAIMPORTAL_EVENTS_KEPT
    oldest_kept = list(
        WorkerEvent.objects.filter(script_id=version.script_id)
        .order_by("-id")
        .values_list("id", flat=True)[kept - 1 : kept]
    )
    if oldest_kept:
        WorkerEvent.objects.filter(
            script_id=version.script_id, id__lt=oldest_kept[0]
        ).delete()
    return len(rows)
