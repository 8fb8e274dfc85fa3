"""Workers KV endpoints (spec 4.16): namespaces, and the keys inside them."""

import base64
import binascii
import json
from typing import Any

from django.http import HttpResponse
from django.utils import timezone

from accounts.exceptions import InvalidInput
from accounts.models import KVEntry, KVNamespace
from accounts.services import kv
from accounts.services.multipart import parse_form

from . import envelope
from .inputs import JSON, Boolean, Input, Integer, ListOf, Nested, Query, Text
from .kit import ApiRequest, endpoint, operation
from .openapi import ref
from .paging import Paging, paged_response
from .serializers import kv_key_json, kv_namespace_json
from .wire import KVBulkGet

TAG = "kv"
NAMESPACE = ref("KVNamespace")
COUNTS = {
    "type": "object",
    "properties": {
        "successful_key_count": {"type": "integer"},
        "unsuccessful_keys": {"type": "array", "items": {"type": "string"}},
    },
}


class NamespaceListing(Paging):
    order = Text(choices=tuple(kv.NAMESPACE_ORDERINGS), default="title")
    direction = Text(choices=("asc", "desc"), default="asc")


class Title(Input):
    title = Text(required=True, max_length=kv.TITLE_MAX_LENGTH)


class Expiry(Query):
    expiration = Integer(minimum=1, description="Unix seconds.")
    expiration_ttl = Integer(minimum=1, description="Seconds from now.")


class KeyListing(Query):
    prefix = Text(blank=True, max_length=kv.KEY_MAX_BYTES, default="")
    cursor = Text(blank=True, default="", description="From the previous page.")
    limit = Integer(minimum=10, maximum=kv.LIST_MAX_KEYS, default=kv.LIST_MAX_KEYS)


class Write(Input):
    """One key of ``kv bulk put``. Other fields of the file are ignored, as
    Cloudflare ignores them."""

    unknown = "ignore"
    key = Text(required=True, max_length=kv.KEY_MAX_BYTES)
    value = Text(required=True, blank=True, storable=False, max_length=2**31)
    base64 = Boolean(default=False, description="The value is base64 bytes.")
    expiration = Integer(minimum=1)
    expiration_ttl = Integer(minimum=1)
    metadata = JSON(max_bytes=kv.METADATA_MAX_BYTES)


METADATA = JSON(max_bytes=kv.METADATA_MAX_BYTES)
KEYS = ListOf(Text(max_length=kv.KEY_MAX_BYTES), max_items=kv.BULK_MAX_KEYS)


@operation(
    "List namespaces (a page past the end is empty).",
    tag=TAG,
    query=NamespaceListing,
    result=NAMESPACE,
    listing=True,
)
def _list_namespaces(
    request: ApiRequest, account_id: str, *, query: NamespaceListing
) -> HttpResponse:
    rows = kv.list_namespaces(
        account=request.cloud_account,
        order=query.order,
        descending=query.direction == "desc",
    )
    return paged_response(rows, query.page(default_size=20), kv_namespace_json)


@operation(
    "Create a namespace (idempotent by title).", tag=TAG, body=Title, result=NAMESPACE
)
def _create_namespace(
    request: ApiRequest, account_id: str, *, body: Title
) -> HttpResponse:
    namespace = kv.create_namespace(
        account=request.cloud_account, title=body.title, now=timezone.now()
    )
    return envelope.success(kv_namespace_json(namespace))


@operation("One namespace.", tag=TAG, result=NAMESPACE)
def _get_namespace(
    request: ApiRequest, account_id: str, namespace_id: str
) -> HttpResponse:
    namespace = kv.get_namespace(
        account=request.cloud_account, namespace_id=namespace_id
    )
    return envelope.success(kv_namespace_json(namespace))


@operation("Rename a namespace.", tag=TAG, body=Title, result=NAMESPACE)
def _rename_namespace(
    request: ApiRequest, account_id: str, namespace_id: str, *, body: Title
) -> HttpResponse:
    namespace = kv.rename_namespace(
        account=request.cloud_account, namespace_id=namespace_id, title=body.title
    )
    return envelope.success(kv_namespace_json(namespace))


@operation("Delete a namespace and its keys.", tag=TAG)
def _delete_namespace(
    request: ApiRequest, account_id: str, namespace_id: str
) -> HttpResponse:
    kv.delete_namespace(account=request.cloud_account, namespace_id=namespace_id)
    return envelope.success({})


namespaces = endpoint()({"GET": _list_namespaces, "POST": _create_namespace})
namespace = endpoint()(
    {"GET": _get_namespace, "PUT": _rename_namespace, "DELETE": _delete_namespace}
)


# --- Keys and values -------------------------------------------------------------


def _namespace(request: ApiRequest, namespace_id: str) -> KVNamespace:
    return kv.get_namespace(account=request.cloud_account, namespace_id=namespace_id)


@operation(
    "A value's raw bytes (not enveloped).",
    tag=TAG,
    raw={"application/octet-stream": {"schema": {}}},
)
def _get_value(
    request: ApiRequest, account_id: str, namespace_id: str, key: str
) -> HttpResponse:
    entry = kv.get_value(
        namespace=_namespace(request, namespace_id), key=key, now=timezone.now()
    )
    # Raw bytes, not an envelope: wrangler prints the body as the value.
    response = HttpResponse(bytes(entry.value), content_type="application/octet-stream")
    if entry.expiration is not None:
        response["Expiration"] = str(entry.expiration)
    return response


@operation(
    "Write a value: raw bytes, or multipart with value and metadata.",
    tag=TAG,
    query=Expiry,
    raw_body={
        "application/octet-stream": {"schema": {}},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["value"],
                "properties": {"value": {}, "metadata": {"description": "JSON."}},
            }
        },
    },
)
def _put_value(
    request: ApiRequest, account_id: str, namespace_id: str, key: str, *, query: Expiry
) -> HttpResponse:
    namespace = _namespace(request, namespace_id)
    metadata = None
    if request.content_type == "multipart/form-data":
        value, metadata = _value_and_metadata(request)
    else:
        value = request.body
    kv.put_value(
        namespace=namespace,
        key=key,
        value=value,
        metadata=metadata,
        expiration=query.expiration,
        expiration_ttl=query.expiration_ttl,
        now=timezone.now(),
    )
    return envelope.success({})


def _value_and_metadata(request: ApiRequest) -> tuple[bytes, Any]:
    """The ``value`` and ``metadata`` parts of ``kv key put --metadata``."""
    parts = {
        part.name: part
        for part in parse_form(
            request.body,
            content_type=request.META.get("CONTENT_TYPE", ""),
            max_parts=2,
        )
    }
    if "value" not in parts:
        raise InvalidInput("The multipart body needs a 'value' part.")
    metadata = None
    if "metadata" in parts:
        try:
            metadata = json.loads(parts["metadata"].data)
        except ValueError as exc:
            raise InvalidInput("The 'metadata' part must be JSON.") from exc
        metadata = METADATA.clean(metadata, path="metadata")
    return parts["value"].data, metadata


@operation("Delete a key.", tag=TAG)
def _delete_value(
    request: ApiRequest, account_id: str, namespace_id: str, key: str
) -> HttpResponse:
    kv.delete_key(namespace=_namespace(request, namespace_id), key=key)
    return envelope.success({})


@operation("A key's metadata.", tag=TAG, result={})
def _get_metadata(
    request: ApiRequest, account_id: str, namespace_id: str, key: str
) -> HttpResponse:
    entry = kv.get_value(
        namespace=_namespace(request, namespace_id), key=key, now=timezone.now()
    )
    return envelope.success(entry.metadata)


@operation(
    "List keys, with cursor paging.",
    tag=TAG,
    query=KeyListing,
    result=ref("KVKey"),
    listing=True,
)
def _list_keys(
    request: ApiRequest, account_id: str, namespace_id: str, *, query: KeyListing
) -> HttpResponse:
    page = kv.list_keys(
        namespace=_namespace(request, namespace_id),
        now=timezone.now(),
        prefix=query.prefix,
        cursor=query.cursor,
        limit=query.limit,
    )
    keys = [kv_key_json(entry) for entry in page.entries]
    return envelope.success(
        keys, result_info={"count": len(keys), "cursor": page.cursor}
    )


@operation(
    "Write many keys, all or none.",
    tag=TAG,
    body=ListOf(Nested(Write), max_items=kv.BULK_MAX_KEYS),
    result=COUNTS,
)
def _bulk_put(
    request: ApiRequest, account_id: str, namespace_id: str, *, body: list[Write]
) -> HttpResponse:
    namespace = _namespace(request, namespace_id)
    now = timezone.now()
    writes = [
        kv.new_write(
            key=item.key,
            value=_bytes_of(item),
            now=now,
            metadata=item.metadata,
            expiration=item.expiration,
            expiration_ttl=item.expiration_ttl,
        )
        for item in body
    ]
    count = kv.bulk_put(namespace=namespace, writes=writes, now=now)
    return envelope.success({"successful_key_count": count, "unsuccessful_keys": []})


def _bytes_of(item: Write) -> bytes:
    try:
        if item.base64:
            return base64.b64decode(item.value, validate=True)
        return item.value.encode()
    except (ValueError, binascii.Error) as exc:
        how = "base64" if item.base64 else "UTF-8 text"
        raise InvalidInput(f"The value of '{item.key}' is not {how}.") from exc


@operation("Delete many keys.", tag=TAG, body=KEYS, result=COUNTS)
def _bulk_delete(
    request: ApiRequest, account_id: str, namespace_id: str, *, body: list[str]
) -> HttpResponse:
    namespace = _namespace(request, namespace_id)
    kv.bulk_delete(namespace=namespace, keys=body)
    return envelope.success(
        {"successful_key_count": len(body), "unsuccessful_keys": []}
    )


@operation(
    "Read many keys (at most 100).",
    tag=TAG,
    body=KVBulkGet,
    result={"type": "object", "properties": {"values": {"type": "object"}}},
)
def _bulk_get(
    request: ApiRequest, account_id: str, namespace_id: str, *, body: KVBulkGet
) -> HttpResponse:
    namespace = _namespace(request, namespace_id)
    found = kv.bulk_get(namespace=namespace, keys=body.keys, now=timezone.now())
    values = {}
    for key, entry in found.items():
        value = (
            None
            if entry is None
            else _bulk_value(entry, key, as_json=body.type == "json")
        )
        if body.with_metadata:
            value = (
                None
                if entry is None
                else {
                    "value": value,
                    "metadata": entry.metadata,
                    **({"expiration": entry.expiration} if entry.expiration else {}),
                }
            )
        values[key] = value
    return envelope.success({"values": values})


def _bulk_value(entry: KVEntry, key: str, *, as_json: bool) -> Any:
    text = bytes(entry.value).decode("utf-8", "replace")
    if not as_json:
        return text
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"The value of '{key}' is not JSON.") from exc


values = endpoint()({"GET": _get_value, "PUT": _put_value, "DELETE": _delete_value})
metadata = endpoint()({"GET": _get_metadata})
keys = endpoint()({"GET": _list_keys})
bulk = endpoint()({"PUT": _bulk_put, "DELETE": _bulk_delete})
bulk_delete = endpoint()({"POST": _bulk_delete})
bulk_get = endpoint()({"POST": _bulk_get})
