"""The internal endpoints a preview's bindings call, in the protocols workerd's
own KV, D1 and queue bindings speak (the runtime's bridge Worker forwards them
with the version's credential and the binding's raw path).

Served only on the runtime's unix socket (``preview_runtime.endpoints.wsgi``). The data
is the same as the client/v4 API's: these views call the same services.
"""

import base64
import json
import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from accounts.exceptions import DomainError
from accounts.models import D1Database, KVNamespace, Queue
from accounts.services import d1, kv, queues, tails
from preview_runtime.services.bindings import (
    BindingCall,
    authorize_binding,
    authorize_tracer,
)

logger = logging.getLogger("claimportal.previews")

METADATA = "CF-KV-Metadata"


class Call:
    """One binding request: who asks, on what, with the binding's own path."""

    def __init__(self, request: HttpRequest, allowed: BindingCall) -> None:
        raw = urlsplit(request.headers.get("X-Binding-Path") or "/")
        self.request = request
        self.method = request.method or "GET"
        self.path = raw.path or "/"
        self.query = {k: v[-1] for k, v in parse_qs(raw.query).items()}
        self.allowed = allowed
        self.now = timezone.now()

    def resource[R: (KVNamespace, D1Database, Queue)](self, kind: type[R]) -> R:
        """The resource the call may use, as the kind its handler speaks
        (HANDLERS picks the handler by the kind that was authorized)."""
        resource = self.allowed.resource
        if not isinstance(resource, kind):
            raise TypeError(f"this call is not on a {kind.__name__}")
        return resource


def _text(status: int, message: str) -> HttpResponse:
    response = HttpResponse(message, status=status, content_type="text/plain")
    # An answer the binding turns into a result or an exception, not a fault of
    # ours: a Worker reading missing keys by the thousand must not fill the log.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


# --- KV ---------------------------------------------------------------------------


def _kv_key(call: Call) -> str:
    key = call.path[1:]
    return unquote(key) if call.query.get("urlencoded", "").lower() == "true" else key


def _kv_value_json(entry: kv.KVEntry | None, kind: str, with_metadata: bool) -> Any:
    if entry is None:
        return None
    value: Any = bytes(entry.value).decode("utf-8", "replace")
    if kind == "json":
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise DomainError(
                "At least one of the requested keys holds a value that is not JSON."
            ) from exc
    return {"value": value, "metadata": entry.metadata} if with_metadata else value


def kv_binding(call: Call) -> HttpResponse:
    namespace = call.resource(KVNamespace)
    if call.method == "POST" and call.path == "/bulk/get":
        body = json.loads(call.request.body or b"{}")
        keys = body.get("keys") or []
        kind = body.get("type") or "text"
        if kind not in ("text", "json"):
            return _text(400, f'"{kind}" is not a valid type. Use "json" or "text"')
        entries = kv.bulk_get(namespace=namespace, keys=keys, now=call.now)
        return JsonResponse(
            {
                key: _kv_value_json(entry, kind, bool(body.get("withMetadata")))
                for key, entry in entries.items()
            }
        )
    if call.method == "GET" and call.path == "/":
        page = kv.list_keys(
            namespace=namespace,
            now=call.now,
            prefix=call.query.get("prefix", ""),
            cursor=call.query.get("cursor", ""),
            limit=int(call.query.get("key_count_limit") or kv.LIST_MAX_KEYS),
        )
        keys = []
        for entry in page.entries:
            item: dict[str, Any] = {"name": entry.key}
            if entry.expiration is not None:
                item["expiration"] = entry.expiration
            if entry.metadata is not None:  # workerd wants it as JSON text
                item["metadata"] = json.dumps(entry.metadata)
            keys.append(item)
        result: dict[str, Any] = {"keys": keys, "list_complete": not page.cursor}
        if page.cursor:
            result["cursor"] = page.cursor
        return JsonResponse(result)
    key = _kv_key(call)
    if call.method == "GET":
        try:
            entry = kv.get_value(namespace=namespace, key=key, now=call.now)
        except kv.KeyNotFound:
            return _text(404, "Not Found")
        response = HttpResponse(
            bytes(entry.value), content_type="application/octet-stream"
        )
        if entry.metadata is not None:
            response[METADATA] = json.dumps(entry.metadata)
        if entry.expiration is not None:
            response["CF-Expiration"] = str(entry.expiration)
        return response
    if call.method == "PUT":
        metadata = call.request.headers.get(METADATA)
        kv.put_value(
            namespace=namespace,
            key=key,
            value=call.request.body,
            now=call.now,
            metadata=json.loads(metadata) if metadata else None,
            expiration=call.query.get("expiration"),
            expiration_ttl=call.query.get("expiration_ttl"),
        )
        return HttpResponse(b"")
    if call.method == "DELETE":
        kv.delete_key(namespace=namespace, key=key)
        return HttpResponse(b"")
    return _text(405, "Method not allowed")


# --- D1 ---------------------------------------------------------------------------


def d1_binding(call: Call) -> HttpResponse:
    if call.method != "POST" or call.path not in ("/query", "/execute"):
        return _text(404, "Not Found")
    raw = call.query.get("resultsFormat") == "ROWS_AND_COLUMNS"
    try:
        queries = d1.parse_queries(json.loads(call.request.body or b"null"))
        answers = []
        for query in queries:  # one result per query, as the binding expects
            results = d1.run_queries(
                database=call.resource(D1Database), queries=[query]
            )
            answers += [r.as_raw() if raw else r.as_objects() for r in results]
    except (DomainError, ValueError) as error:
        message = getattr(error, "message", None) or str(error)
        return JsonResponse({"success": False, "error": message})
    response = JsonResponse(answers, safe=False)
    token = call.request.headers.get("x-cf-d1-session-commit-token")
    if token is not None:
        response["x-cf-d1-session-commit-token"] = token or "0"
    return response


# --- Queues -----------------------------------------------------------------------


def _metrics(call: Call) -> dict[str, Any]:
    return queues.queue_metrics(queue=call.resource(Queue), now=call.now)


def queue_binding(call: Call) -> HttpResponse:
    queue = call.resource(Queue)
    default_delay = call.allowed.binding.get("delivery_delay")
    if call.method == "GET" and call.path == "/metrics":
        return JsonResponse(_metrics(call))
    if call.method != "POST" or call.path not in ("/message", "/batch"):
        return _text(404, "Not Found")
    headers = call.request.headers
    delay = headers.get("X-Msg-Delay-Secs", default_delay)
    if call.path == "/message":
        messages = [
            queues.new_message(
                body=call.request.body,
                content_type=headers.get("X-Msg-Fmt") or "v8",
                delay_seconds=delay,
            )
        ]
    else:
        body = json.loads(call.request.body or b"{}")
        messages = [
            queues.new_message(
                body=base64.b64decode(item.get("body") or ""),
                content_type=item.get("contentType") or "v8",
                delay_seconds=item.get("delaySecs", delay),
            )
            for item in body.get("messages") or []
        ]
    queues.send_messages(queue=queue, messages=messages, now=call.now)
    return JsonResponse({"metadata": {"metrics": _metrics(call)}})


HANDLERS: dict[str, Callable[[Call], HttpResponse]] = {
    "kv": kv_binding,
    "d1": d1_binding,
    "queue": queue_binding,
}


@csrf_exempt
def binding(request: HttpRequest, kind: str, resource_id: str) -> HttpResponse:
    """Check the caller's right to the resource, then speak its protocol.
    Errors are plain text with a 4xx status, which the binding raises in the
    Worker as an exception with that text."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    try:
        allowed = authorize_binding(
            token=token.strip() if scheme.lower() == "bearer" else None,
            kind=kind,
            resource_id=resource_id,
            now=timezone.now(),
        )
        return HANDLERS[kind](Call(request, allowed))
    except DomainError as error:
        return _text(error.status, error.message)
    except (ValueError, TypeError, AttributeError):
        return _text(
            HTTPStatus.BAD_REQUEST, "The binding sent a request we cannot read."
        )
    except DatabaseError:
        logger.exception("database error in a %s binding call", kind)
        return _text(HTTPStatus.SERVICE_UNAVAILABLE, "The data store is unavailable.")


@csrf_exempt
def events(request: HttpRequest) -> HttpResponse:
    """What the runtime's tail Worker traced for one version of a Worker."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    now = timezone.now()
    try:
        version = authorize_tracer(
            token=token.strip() if scheme.lower() == "bearer" else None, now=now
        )
        stored = tails.record_events(
            version=version, traces=json.loads(request.body or b"[]"), now=now
        )
    except DomainError as error:
        return _text(error.status, error.message)
    except ValueError:
        return _text(HTTPStatus.BAD_REQUEST, "The traces are not JSON.")
    except DatabaseError:
        logger.exception("database error while recording events")
        return _text(HTTPStatus.SERVICE_UNAVAILABLE, "The data store is unavailable.")
    return JsonResponse({"stored": stored})
