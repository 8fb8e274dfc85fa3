"""Workers KV endpoints (spec 4.16): namespaces, and the keys inside them."""

import base64
import json
from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from accounts.exceptions import InvalidInput
from accounts.models import KVEntry, KVNamespace
from accounts.services import kv
from accounts.services.multipart import parse_form
from accounts.services.validation import whole_number

from . import envelope
from .kit import ApiRequest, endpoint, json_body, json_object
from .paging import page_request, paged_response
from .serializers import kv_key_json, kv_namespace_json


def _list_namespaces(request: ApiRequest, account_id: str) -> HttpResponse:
    page = page_request(request, default_size=20, max_size=1000)
    rows = kv.list_namespaces(
        account=request.cloud_account,
        order=request.GET.get("order", "title"),
        descending=request.GET.get("direction") == "desc",
    )
    return paged_response(rows, page, kv_namespace_json)


def _create_namespace(request: ApiRequest, account_id: str) -> HttpResponse:
    body = json_object(request)
    namespace = kv.create_namespace(
        account=request.cloud_account, title=body.get("title"), now=timezone.now()
    )
    return envelope.success(kv_namespace_json(namespace))


def _get_namespace(
    request: ApiRequest, account_id: str, namespace_id: str
) -> HttpResponse:
    namespace = kv.get_namespace(
        account=request.cloud_account, namespace_id=namespace_id
    )
    return envelope.success(kv_namespace_json(namespace))


def _rename_namespace(
    request: ApiRequest, account_id: str, namespace_id: str
) -> HttpResponse:
    body = json_object(request)
    namespace = kv.rename_namespace(
        account=request.cloud_account,
        namespace_id=namespace_id,
        title=body.get("title"),
    )
    return envelope.success(kv_namespace_json(namespace))


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


def _put_value(
    request: ApiRequest, account_id: str, namespace_id: str, key: str
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
        expiration=request.GET.get("expiration"),
        expiration_ttl=request.GET.get("expiration_ttl"),
        now=timezone.now(),
    )
    return envelope.success({})


def _value_and_metadata(request: HttpRequest) -> tuple[bytes, Any]:
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
    return parts["value"].data, metadata


def _delete_value(
    request: ApiRequest, account_id: str, namespace_id: str, key: str
) -> HttpResponse:
    kv.delete_key(namespace=_namespace(request, namespace_id), key=key)
    return envelope.success({})


def _get_metadata(
    request: ApiRequest, account_id: str, namespace_id: str, key: str
) -> HttpResponse:
    entry = kv.get_value(
        namespace=_namespace(request, namespace_id), key=key, now=timezone.now()
    )
    return envelope.success(entry.metadata)


def _list_keys(request: ApiRequest, account_id: str, namespace_id: str) -> HttpResponse:
    limit = whole_number(
        request.GET.get("limit", kv.LIST_MAX_KEYS),
        field="limit",
        minimum=10,
        maximum=kv.LIST_MAX_KEYS,
    )
    page = kv.list_keys(
        namespace=_namespace(request, namespace_id),
        now=timezone.now(),
        prefix=request.GET.get("prefix", ""),
        cursor=request.GET.get("cursor", ""),
        limit=limit,
    )
    keys = [kv_key_json(entry) for entry in page.entries]
    return envelope.success(
        keys, result_info={"count": len(keys), "cursor": page.cursor}
    )


def _bulk_put(request: ApiRequest, account_id: str, namespace_id: str) -> HttpResponse:
    namespace = _namespace(request, namespace_id)
    items = _json_list(request)
    now = timezone.now()
    writes = [_bulk_write(item, now=now) for item in items]
    count = kv.bulk_put(namespace=namespace, writes=writes, now=now)
    return envelope.success({"successful_key_count": count, "unsuccessful_keys": []})


def _bulk_write(item: Any, *, now: datetime) -> kv.KVWrite:
    if not isinstance(item, dict) or not isinstance(item.get("value"), str):
        raise InvalidInput(
            'Each item must be an object like {"key": "k", "value": "v"}.'
        )
    value = item["value"]
    if item.get("base64") is True:
        try:
            data = base64.b64decode(value, validate=True)
        except ValueError as exc:
            raise InvalidInput(
                f"The value of '{item.get('key')}' is not base64."
            ) from exc
    else:
        data = value.encode()
    return kv.new_write(
        key=item.get("key"),
        value=data,
        now=now,
        metadata=item.get("metadata"),
        expiration=item.get("expiration"),
        expiration_ttl=item.get("expiration_ttl"),
    )


def _bulk_delete(
    request: ApiRequest, account_id: str, namespace_id: str
) -> HttpResponse:
    namespace = _namespace(request, namespace_id)
    keys = _json_list(request)
    kv.bulk_delete(namespace=namespace, keys=keys)
    return envelope.success(
        {"successful_key_count": len(keys), "unsuccessful_keys": []}
    )


def _bulk_get(request: ApiRequest, account_id: str, namespace_id: str) -> HttpResponse:
    namespace = _namespace(request, namespace_id)
    body = json_object(request)
    keys = body.get("keys")
    if not isinstance(keys, list):
        raise InvalidInput("'keys' must be a list of key names.")
    as_json = body.get("type") == "json"
    with_metadata = body.get("withMetadata") is True
    found = kv.bulk_get(namespace=namespace, keys=keys, now=timezone.now())
    values = {}
    for key, entry in found.items():
        value = None if entry is None else _bulk_value(entry, key, as_json=as_json)
        if with_metadata:
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


def _json_list(request: HttpRequest) -> list:
    body = json_body(request)
    if not isinstance(body, list):
        raise InvalidInput("The request body must be a JSON array.")
    return body


values = endpoint()({"GET": _get_value, "PUT": _put_value, "DELETE": _delete_value})
metadata = endpoint()({"GET": _get_metadata})
keys = endpoint()({"GET": _list_keys})
bulk = endpoint()({"PUT": _bulk_put, "DELETE": _bulk_delete})
bulk_delete = endpoint()({"POST": _bulk_delete})
bulk_get = endpoint()({"POST": _bulk_get})
