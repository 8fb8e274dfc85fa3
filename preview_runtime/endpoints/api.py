"""The internal endpoints a preview's bindings call, in the protocols workerd's
own KV, D1 and queue bindings speak (the runtime's bridge Worker forwards them
with the version's credential and the binding's raw path).

Served only on the runtime's unix socket (``preview_runtime.endpoints.wsgi``). The data
is the same as the client/v4 API's: these views call the same services.
"""

import base64
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from accounts.api.failures import answering_failures
from accounts.api.inputs import (
    JSON,
    Base64,
    Boolean,
    Field,
    Input,
    Integer,
    ListOf,
    Nested,
    Query,
    Text,
    decode_json,
)
from accounts.api.wire import KVBulkGet, Queries
from accounts.exceptions import DomainError
from accounts.models import D1Database, KVNamespace, Queue
from accounts.services import d1, kv, queues, tails
from preview_runtime.services.bindings import (
    BindingCall,
    authorize_binding,
    authorize_tracer,
)

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

    def body(self, declared: Field, *, empty: Any) -> Any:
        """The JSON body, checked by its declaration (``empty`` when none)."""
        raw = self.request.body
        return declared.clean(decode_json(raw) if raw.strip() else empty, path="")

    def query_of(self, declared: type[Input]) -> Any:
        return declared.parse(self.query, text=True)


def _failure(error: DomainError) -> HttpResponse:
    """An error as the bindings read one: its message as text, with its status."""
    return _text(error.status, error.message)


def _text(status: int, message: str) -> HttpResponse:
    response = HttpResponse(message, status=status, content_type="text/plain")
    # An answer the binding turns into a result or an exception, not a fault of
    # ours: a Worker reading missing keys by the thousand must not fill the log.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


# --- KV ---------------------------------------------------------------------------


class KVList(Query):
    prefix = Text(blank=True, max_length=kv.KEY_MAX_BYTES, default="")
    cursor = Text(blank=True, default="")
    key_count_limit = Integer(minimum=1, maximum=kv.LIST_MAX_KEYS)


class KVWrite(Query):
    urlencoded = Boolean(default=False)
    expiration = Integer(minimum=1)
    expiration_ttl = Integer(minimum=1)


class KVMetadata(Input):
    """The metadata header of a KV write: any JSON value, in an object."""

    metadata = JSON(max_bytes=kv.METADATA_MAX_BYTES)


def _kv_key(call: Call) -> str:
    key = call.path[1:]
    return unquote(key) if call.query_of(KVWrite).urlencoded else key


def _kv_metadata(call: Call) -> Any:
    header = call.request.headers.get(METADATA)
    if not header:
        return None
    return KVMetadata.parse({"metadata": decode_json(header.encode())}).metadata


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
        body = call.body(Nested(KVBulkGet), empty={})
        entries = kv.bulk_get(namespace=namespace, keys=body.keys, now=call.now)
        return JsonResponse(
            {
                key: _kv_value_json(entry, body.type, body.with_metadata)
                for key, entry in entries.items()
            }
        )
    if call.method == "GET" and call.path == "/":
        listing = call.query_of(KVList)
        page = kv.list_keys(
            namespace=namespace,
            now=call.now,
            prefix=listing.prefix,
            cursor=listing.cursor,
            limit=listing.key_count_limit or kv.LIST_MAX_KEYS,
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
        write = call.query_of(KVWrite)
        kv.put_value(
            namespace=namespace,
            key=key,
            value=call.request.body,
            now=call.now,
            metadata=_kv_metadata(call),
            expiration=write.expiration,
            expiration_ttl=write.expiration_ttl,
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
        queries = call.body(Queries(), empty=None)
        # A batch is one transaction, as through client/v4: all or nothing.
        results = d1.run_queries(database=call.resource(D1Database), queries=queries)
        answers = [r.as_raw() if raw else r.as_objects() for r in results]
    except DomainError as error:
        return JsonResponse({"success": False, "error": error.message})
    response = JsonResponse(answers, safe=False)
    token = call.request.headers.get("x-cf-d1-session-commit-token")
    if token is not None:
        response["x-cf-d1-session-commit-token"] = token or "0"
    return response


# --- Queues -----------------------------------------------------------------------


def _metrics(call: Call) -> dict[str, Any]:
    return queues.queue_metrics(queue=call.resource(Queue), now=call.now)


class Message(Input):
    """One message of workerd's queue ``sendBatch``."""

    unknown = "ignore"
    body = Base64(blank=True, max_length=2**27, default="")
    content_type = Text(key="contentType", max_length=16, default="v8")
    delay_seconds = Integer(key="delaySecs")  # its range is the queue's rule


class Batch(Input):
    unknown = "ignore"
    messages = ListOf(Nested(Message), max_items=queues.MAX_BATCH_MESSAGES, default=[])


class MessageHeaders(Query):
    """The headers of workerd's queue ``send``, read as text."""

    content_type = Text(key="X-Msg-Fmt", max_length=16, default="v8")
    delay_seconds = Integer(key="X-Msg-Delay-Secs")


def _either(given: Any, default: Any) -> Any:
    return default if given is None else given


def queue_binding(call: Call) -> HttpResponse:
    queue = call.resource(Queue)
    default_delay = call.allowed.binding.get("delivery_delay")
    if call.method == "GET" and call.path == "/metrics":
        return JsonResponse(_metrics(call))
    if call.method != "POST" or call.path not in ("/message", "/batch"):
        return _text(404, "Not Found")
    headers = MessageHeaders.parse(
        {k: v for k, v in call.request.headers.items() if k.startswith("X-Msg-")},
        text=True,
    )
    delay = _either(headers.delay_seconds, default_delay)
    if call.path == "/message":
        messages = [
            queues.new_message(
                body=call.request.body,
                content_type=headers.content_type,
                delay_seconds=delay,
            )
        ]
    else:
        batch = call.body(Nested(Batch), empty={})
        messages = [
            queues.new_message(
                body=base64.b64decode(item.body),
                content_type=item.content_type,
                delay_seconds=delay
                if item.delay_seconds is None
                else item.delay_seconds,
            )
            for item in batch.messages
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
    Errors are plain text with their status, which the binding raises in the
    Worker as an exception with that text."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    with answering_failures(_failure, where=f"a {kind} binding call") as failed:
        allowed = authorize_binding(
            token=token.strip() if scheme.lower() == "bearer" else None,
            kind=kind,
            resource_id=resource_id,
            now=timezone.now(),
        )
        return HANDLERS[kind](Call(request, allowed))
    return failed[0]


TRACES = ListOf(JSON(max_bytes=None), max_items=10_000)


@csrf_exempt
def events(request: HttpRequest) -> HttpResponse:
    """What the runtime's tail Worker traced for one version of a Worker."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    now = timezone.now()
    with answering_failures(_failure, where="recording events") as failed:
        version = authorize_tracer(
            token=token.strip() if scheme.lower() == "bearer" else None, now=now
        )
        raw = request.body
        traces = TRACES.clean(decode_json(raw) if raw.strip() else [], path="traces")
        stored = tails.record_events(version=version, traces=traces, now=now)
        return JsonResponse({"stored": stored})
    return failed[0]
