"""Hyperdrive endpoints (spec 2.7, 4.20). The origin password goes in, never out."""

from django.http import HttpResponse
from django.utils import timezone

from accounts.services import hyperdrive

from . import envelope
from .kit import ApiRequest, endpoint, json_object
from .paging import page_request, paged_response
from .serializers import hyperdrive_json


def _list(request: ApiRequest, account_id: str) -> HttpResponse:
    page = page_request(request, default_size=100, max_size=1000)
    rows = hyperdrive.list_configs(account=request.cloud_account)
    return paged_response(rows, page, hyperdrive_json)


def _create(request: ApiRequest, account_id: str) -> HttpResponse:
    config = hyperdrive.create_config(
        account=request.cloud_account, body=json_object(request), now=timezone.now()
    )
    return envelope.success(hyperdrive_json(config))


def _get(request: ApiRequest, account_id: str, config_id: str) -> HttpResponse:
    config = hyperdrive.get_config(account=request.cloud_account, config_id=config_id)
    return envelope.success(hyperdrive_json(config))


def _update(request: ApiRequest, account_id: str, config_id: str) -> HttpResponse:
    config = hyperdrive.update_config(
        account=request.cloud_account,
        config_id=config_id,
        body=json_object(request),
        now=timezone.now(),
        replace=request.method == "PUT",
    )
    return envelope.success(hyperdrive_json(config))


def _delete(request: ApiRequest, account_id: str, config_id: str) -> HttpResponse:
    hyperdrive.delete_config(account=request.cloud_account, config_id=config_id)
    return envelope.success(None)


configs = endpoint()({"GET": _list, "POST": _create})
config = endpoint()({"GET": _get, "PATCH": _update, "PUT": _update, "DELETE": _delete})
