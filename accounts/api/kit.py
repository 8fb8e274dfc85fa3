"""The small kit every client/v4 endpoint stands on: method dispatch, bearer
authentication, declared inputs (``operation``), JSON bodies whatever their
Content-Type, and one mapping from domain errors (and anything unforeseen) to
an answer, which the binding endpoints share."""

from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils import timezone

from accounts.exceptions import DomainError, InvalidInput, PayloadTooLarge
from accounts.models import ApiToken, CloudAccount
from accounts.services.clients import note_agent_client
from accounts.services.multipart import Part, parse_form
from accounts.services.provisioning import ClientOrigin
from accounts.services.tokens import authenticate_token

from . import envelope
from .failures import answering_failures
from .inputs import (
    INVALID_INPUT_CODE,
    Field,
    Input,
    ListOf,
    Nested,
    Schema,
    decode_json,
)

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
    return decode_json(raw)


def json_object(request: HttpRequest, *, required: bool = True) -> dict[str, Any]:
    body = json_body(request, default=None if required else {})
    if not isinstance(body, dict):
        raise InvalidInput("The request body must be a JSON object.")
    return body


def multipart_parts(request: HttpRequest) -> list[Part]:
    """The parts of a multipart request; the body's size is bounded by Django."""
    return parse_form(
        request.body,
        content_type=request.META.get("CONTENT_TYPE", ""),
        max_parts=settings.DATA_UPLOAD_MAX_NUMBER_FILES,
    )


@dataclass(frozen=True)
class FormBody[I: Input]:
    """A multipart body as the kit hands it over: the JSON part, parsed by its
    declared input, and every other part as it was sent."""

    json: I
    files: list[Part]


@dataclass(frozen=True)
class JSONPartForm:
    """A multipart/form-data body of one JSON part (a Worker upload's
    ``metadata``), read by a declared input, and files (the modules).

    ``error_code`` is what a refused JSON part answers with where the client
    branches on a code of its own (wrangler prints a 10021's message).
    """

    input: type[Input]
    part: str = "metadata"
    error_code: int = INVALID_INPUT_CODE
    files: str = "The other parts: files, each named by its filename."

    def parse(self, request: HttpRequest) -> FormBody:
        parts = multipart_parts(request)
        found = [p for p in parts if p.name == self.part]
        if len(found) != 1:
            raise self._refused(f"The upload needs exactly one '{self.part}' part.")
        try:
            data = decode_json(found[0].data)
        except InvalidInput as exc:
            raise self._refused(f"The '{self.part}' part is not valid JSON.") from exc
        if not isinstance(data, dict):
            raise self._refused(f"The '{self.part}' part must be a JSON object.")
        try:
            parsed = self.input.parse(data)
        except InvalidInput as error:
            if error.code != INVALID_INPUT_CODE:
                raise
            raise self._refused(error.message) from error
        return FormBody(json=parsed, files=[p for p in parts if p.name != self.part])

    def _refused(self, message: str) -> DomainError:
        return DomainError(message, code=self.error_code)

    def content(self) -> Schema:
        """The OpenAPI content of this body."""
        schema = {
            "type": "object",
            "required": [self.part],
            "properties": {self.part: self.input.schema()},
            "additionalProperties": {
                "type": "string",
                "contentMediaType": "application/octet-stream",
                "description": self.files,
            },
        }
        return {
            "multipart/form-data": {
                "schema": schema,
                "encoding": {self.part: {"contentType": "application/json"}},
            }
        }


@dataclass(frozen=True)
class Operation:
    """What one handler takes and answers, declared next to it.

    ``body`` is an ``Input`` class (a JSON object) or a ``Field`` (a JSON array
    of them, say); ``query`` an ``Input`` read from the query string. The kit
    hands the parsed values to the handler as ``body=`` and ``query=``; the
    OpenAPI document is built from the same declaration. ``form`` declares a
    multipart body with a JSON part, handed over as ``body=`` too;
    ``raw_body`` names a body that is not JSON (bytes, files) and is read by
    the handler.
    """

    summary: str
    tag: str
    body: Field | None = None
    body_required: bool = True
    form: JSONPartForm | None = None
    query: type[Input] | None = None
    result: Schema | None = None
    listing: bool = False
    raw: Schema | None = None
    raw_body: Schema | None = None
    errors: dict[str, str] = field(default_factory=dict)
    auth: bool | None = None  # the document's word on a token, when not the view's

    def inputs(self, request: HttpRequest) -> dict[str, Any]:
        parsed: dict[str, Any] = {}
        if self.query is not None:
            parsed["query"] = self.query.parse(
                _query_data(request, self.query), text=True
            )
        if self.body is not None:
            data = json_body(request, default=None if self.body_required else {})
            parsed["body"] = self.body.clean(data, path="")
        elif self.form is not None:
            parsed["body"] = self.form.parse(request)
        return parsed


def _query_data(request: HttpRequest, query: type[Input]) -> dict[str, Any]:
    """The query string as a dict: a list field takes every value of its key
    (``?name=a&name=b``), any other field the last."""
    data: dict[str, Any] = dict(request.GET.items())
    for declared_field in query.fields.values():
        key = declared_field.key
        if isinstance(declared_field, ListOf) and key in request.GET:
            data[key] = request.GET.getlist(key)
    return data


def operation(
    summary: str,
    *,
    tag: str,
    body: type[Input] | Field | None = None,
    **declared: Any,
) -> Callable[[Handler], Handler]:
    """Declare a handler's inputs and answer (see ``Operation``)."""
    if isinstance(body, type):
        body = Nested(body)

    def declare(handler: Handler) -> Handler:
        handler.operation = Operation(summary, tag, body, **declared)  # type: ignore[attr-defined]
        return handler

    return declare


def declared(handler: Handler) -> Operation | None:
    return getattr(handler, "operation", None)


def _envelope_failure(error: DomainError) -> HttpResponse:
    response = envelope.from_error(error)
    # Every 401 (no token, an unknown one, a claimed account's old one) tells
    # the agent where to get a token.
    if response.status_code == HTTPStatus.UNAUTHORIZED:
        response["WWW-Authenticate"] = WWW_AUTHENTICATE
    return response


def endpoint(
    *, auth: bool = True, gate: Callable[[ApiRequest], None] | None = None
) -> Callable[[dict[str, Handler]], "EndpointView"]:
    """Build one view from handlers keyed by HTTP method.

    With ``auth``, the bearer token must open the account named by the URL's
    ``account_id``; handlers then get ``request.api_token`` and
    ``request.cloud_account``. ``gate`` runs next, before any input is read
    (a rate limit counts every attempt, well formed or not). A handler declared
    with ``operation`` gets its parsed inputs as keyword arguments; bad input
    never reaches it.
    """
    return lambda handlers: EndpointView(handlers, auth=auth, gate=gate)


class EndpointView:
    """One URL's view: the handler for each HTTP method it answers."""

    csrf_exempt = True  # bearer tokens, no cookies: nothing to forge

    def __init__(
        self,
        handlers: dict[str, Handler],
        *,
        auth: bool,
        gate: Callable[[ApiRequest], None] | None = None,
    ) -> None:
        self.handlers = handlers  # the OpenAPI document reads what each declares
        self.auth = auth
        self.gate = gate

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
        where = f"{request.method} {request.path}"
        with answering_failures(_envelope_failure, where=where) as failed:
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
            if self.gate is not None:
                self.gate(request)
            operation = declared(handler)
            if operation is not None:
                kwargs.update(operation.inputs(request))
            return handler(request, *args, **kwargs)
        return failed[0]
