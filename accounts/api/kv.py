"""Workers KV endpoints (spec 4.16): namespaces, and the keys inside them."""

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from accounts.services import kv

from . import envelope
from .kit import endpoint, json_object
from .paging import page_request, paged_response
from .serializers import kv_namespace_json


def _list_namespaces(request: HttpRequest, account_id: str) -> HttpResponse:
    page = page_request(request, default_size=20, max_size=1000)
    rows = kv.list_namespaces(
        account=request.cloud_account,
        order=request.GET.get("order", "title"),
        descending=request.GET.get("direction") == "desc",
    )
    return paged_response(rows, page, kv_namespace_json)


def _create_namespace(request: HttpRequest, account_id: str) -> HttpResponse:
    body = json_object(request)
    namespace = kv.create_namespace(
        account=request.cloud_account, title=body.get("title"), now=timezone.now()
    )
    return envelope.success(kv_namespace_json(namespace))


def _get_namespace(
    request: HttpRequest, account_id: str, namespace_id: str
) -> HttpResponse:
    namespace = kv.get_namespace(
        account=request.cloud_account, namespace_id=namespace_id
    )
    return envelope.success(kv_namespace_json(namespace))


def _rename_namespace(
    request: HttpRequest, account_id: str, namespace_id: str
) -> HttpResponse:
    body = json_object(request)
    namespace = kv.rename_namespace(
        account=request.cloud_account,
        namespace_id=namespace_id,
        title=body.get("title"),
    )
    return envelope.success(kv_namespace_json(namespace))


def _delete_namespace(
    request: HttpRequest, account_id: str, namespace_id: str
) -> HttpResponse:
    kv.delete_namespace(account=request.cloud_account, namespace_id=namespace_id)
    return envelope.success({})


namespaces = endpoint()({"GET": _list_namespaces, "POST": _create_namespace})
namespace = endpoint()(
    {"GET": _get_namespace, "PUT": _rename_namespace, "DELETE": _delete_namespace}
)
