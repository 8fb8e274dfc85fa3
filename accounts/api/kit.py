"""The small kit every client/v4 endpoint stands on: method dispatch, bearer
authentication, JSON bodies whatever their Content-Type, and one mapping from
domain errors (and anything unforeseen) to the envelope."""

import json
import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponseBase
from django.utils import timezone

from accounts.exceptions import (
    DomainError,
    InvalidInput,
    PayloadTooLarge,
    ServiceUnavailable,
)
from accounts.models import ApiToken, CloudAccount
from accounts.services.clients import note_agent_client
from accounts.services.provisioning import ClientOrigin
from accounts.services.tokens import authenticate_token

from . import envelope

logger = logging.getLogger("claimportal.api")

Handler = Callable[..., HttpResponseBase]  # a file download streams


class ApiRequest(HttpRequest):
    """What the kit adds to a request. Only a type; Django builds the request."""

    # With endpoint(auth=True): the token it came with and the account it opens.
    api_token: ApiToken
    cloud_account: CloudAccount
    # Behind provisioning's admitted(): the caller, as the rate limits saw it.
    client_origin: ClientOrigin


# Points an agent that got a 401 to the instructions for getting a token.
WWW_AUTHENTICATE = 'Bearer realm="claimportal", auth_md="/auth.md"'


def bearer_token(request: HttpRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def json_body(request: HttpRequest, *, default: Any = None) -> Any:
    """The request body as JSON, whatever Content-Type it was labelled with."""
    try:
        raw = request.body
    except RequestDataTooBig as exc:
        raise PayloadTooLarge() from exc
    if not raw.strip():
        if default is not None:
            return default
        raise InvalidInput("A JSON request body is required.")
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidInput("The request body is not valid JSON.") from exc


def _refuse_constant(name: str) -> None:
    # NaN and Infinity are not JSON, and PostgreSQL's jsonb cannot store them.
    raise ValueError(f"{name} is not a JSON value")


def json_object(request: HttpRequest, *, required: bool = True) -> dict[str, Any]:
    body = json_body(request, default=None if required else {})
    if not isinstance(body, dict):
        raise InvalidInput("The request body must be a JSON object.")
    return body


def endpoint(*, auth: bool = True) -> Callable[[dict[str, Handler]], "EndpointView"]:
    """Build one view from handlers keyed by HTTP method.

    With ``auth``, the bearer token must open the account named by the URL's
    ``account_id``; handlers then get ``request.api_token`` and
    ``request.cloud_account``.
    """
    return lambda handlers: EndpointView(handlers, auth=auth)


class EndpointView:
    """One URL's view: the handler for each HTTP method it answers."""

    csrf_exempt = True  # bearer tokens, no cookies: nothing to forge

    def __init__(self, handlers: dict[str, Handler], *, auth: bool) -> None:
        self.handlers = handlers  # the OpenAPI test reads which methods exist
        self.auth = auth

    def __call__(
        self, request: ApiRequest, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        handler = self.handlers.get(request.method or "")
        if handler is None:
            return envelope.failure(
                code=10405,
                message=f"{request.method} is not allowed here.",
                status=HTTPStatus.METHOD_NOT_ALLOWED,
            )
        try:
            if self.auth:
                token = authenticate_token(
                    raw_token=bearer_token(request),
                    account_id=kwargs.get("account_id"),
                    now=timezone.now(),
                )
                request.api_token = token
                request.cloud_account = token.account
                note_agent_client(
                    account=token.account,
                    user_agent=request.headers.get("User-Agent", ""),
                )
            return handler(request, *args, **kwargs)
        except DomainError as error:
            response = envelope.from_error(error)
            # Every 401 (no token, an unknown one, a claimed account's old
            # one) tells the agent where to get a token.
            if response.status_code == HTTPStatus.UNAUTHORIZED:
                response["WWW-Authenticate"] = WWW_AUTHENTICATE
            return response
        except RequestDataTooBig:
            return envelope.from_error(PayloadTooLarge())
        except DatabaseError:
            logger.exception("database error on %s", request.method)
            return envelope.from_error(ServiceUnavailable())
