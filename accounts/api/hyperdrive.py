"""Hyperdrive endpoints (spec 2.7, 4.20). The origin password goes in, never out."""

from django.http import HttpResponse
from django.utils import timezone

from accounts.services import hyperdrive

from . import envelope
from .inputs import HEX_ID, Boolean, Input, Integer, Nested, Text
from .kit import ApiRequest, endpoint, operation
from .openapi import ref
from .paging import Paging, paged_response
from .serializers import hyperdrive_json

TAG = "hyperdrive"
CONFIG = ref("Hyperdrive")


class Origin(Input):
    """Where the database is. Temporary accounts connect to a host and port
    only (no Cloudflare Access service)."""

    scheme = Text(required=True, choices=hyperdrive.SCHEMES)
    host = Text(required=True, max_length=253)
    port = Integer(required=True, minimum=1, maximum=65535)
    database = Text(required=True, max_length=255)
    user = Text(required=True, max_length=255)
    password = Text(required=True, max_length=1024, description="Never returned.")


class Caching(Input):
    disabled = Boolean()
    max_age = Integer(maximum=3600)
    stale_while_revalidate = Integer(maximum=3600)


class Mtls(Input):
    ca_certificate_id = Text(pattern=HEX_ID, description="A CA of this account.")
    mtls_certificate_id = Text(pattern=HEX_ID, description="An mTLS certificate.")
    sslmode = Text(
        max_length=32,
        description="require, verify-ca, verify-full "
        "(postgres); REQUIRED, VERIFY_CA, VERIFY_IDENTITY (mysql).",
    )


class NewConfig(Input):
    """A whole Hyperdrive config (POST, and PUT, which replaces one)."""

    name = Text(required=True, max_length=255)
    origin = Nested(Origin, required=True)
    caching = Nested(Caching)
    mtls = Nested(Mtls)
    origin_connection_limit = Integer(minimum=1, maximum=100)


ConfigChange = NewConfig.partial()


def _config_kwargs(body: Input) -> dict:
    """The service's keyword arguments from a config body: the origin without
    its password, the password apart."""
    values = body.present()
    origin = values.pop("origin", None)
    if origin is not None:
        values["password"] = origin.pop("password", None)
        values["origin"] = origin
    return values


@operation(
    "List Hyperdrive configs.", tag=TAG, query=Paging, result=CONFIG, listing=True
)
def _list(request: ApiRequest, account_id: str, *, query: Paging) -> HttpResponse:
    rows = hyperdrive.list_configs(account=request.cloud_account)
    return paged_response(rows, query.page(default_size=100), hyperdrive_json)


@operation("Create a config.", tag=TAG, body=NewConfig, result=CONFIG)
def _create(request: ApiRequest, account_id: str, *, body: NewConfig) -> HttpResponse:
    config = hyperdrive.create_config(
        account=request.cloud_account, now=timezone.now(), **_config_kwargs(body)
    )
    return envelope.success(hyperdrive_json(config))


@operation("Get a config (never its password).", tag=TAG, result=CONFIG)
def _get(request: ApiRequest, account_id: str, config_id: str) -> HttpResponse:
    config = hyperdrive.get_config(account=request.cloud_account, config_id=config_id)
    return envelope.success(hyperdrive_json(config))


@operation(
    "Change what the body names; an origin without a password keeps the old one.",
    tag=TAG,
    body=ConfigChange,
    result=CONFIG,
)
def _change(
    request: ApiRequest, account_id: str, config_id: str, *, body: Input
) -> HttpResponse:
    config = hyperdrive.update_config(
        account=request.cloud_account,
        config_id=config_id,
        now=timezone.now(),
        **_config_kwargs(body),
    )
    return envelope.success(hyperdrive_json(config))


@operation("Replace a config.", tag=TAG, body=NewConfig, result=CONFIG)
def _replace(
    request: ApiRequest, account_id: str, config_id: str, *, body: NewConfig
) -> HttpResponse:
    config = hyperdrive.update_config(
        account=request.cloud_account,
        config_id=config_id,
        now=timezone.now(),
        replace=True,
        **_config_kwargs(body),
    )
    return envelope.success(hyperdrive_json(config))


@operation("Delete a config.", tag=TAG)
def _delete(request: ApiRequest, account_id: str, config_id: str) -> HttpResponse:
    hyperdrive.delete_config(account=request.cloud_account, config_id=config_id)
    return envelope.success(None)


configs = endpoint()({"GET": _list, "POST": _create})
config = endpoint()({"GET": _get, "PATCH": _change, "PUT": _replace, "DELETE": _delete})
