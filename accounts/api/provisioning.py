"""The provisioning calls: a proof-of-work challenge, a temporary account for its
solution, and the account's status for the agent that made it.

wrangler shows only the status line of the first two calls (never the message),
so every refusal there picks a status whose text tells the reason.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils import timezone

from accounts.exceptions import Forbidden, InvalidInput
from accounts.http import request_origin
from accounts.services import claims, provisioning
from accounts.services.tokens import token_for_status

from . import envelope
from .kit import ApiRequest, Handler, bearer_token, endpoint, json_object
from .serializers import iso

CREDENTIAL_HEADERS = (
    "Authorization",
    "X-Auth-Key",
    "X-Auth-Email",
    "X-Auth-User-Service-Key",
)
URL_MAX_LENGTH = 500  # the model's column


class CredentialsRefused(Forbidden):
    code = 1110
    message = (
        "Temporary accounts are for unauthenticated callers only; this request "
        "carries credentials. Use your own account, or send no Authorization or "
        "X-Auth-* headers."
    )


def admitted(action: str) -> Callable[[Handler], Handler]:
    """Run a handler only for a caller without credentials that the rate
    limits and the blocklist let through; every attempt counts, well formed or
    not. The handler finds the caller at ``request.client_origin``."""

    def wrap(handler: Handler) -> Handler:
        @wraps(handler)
        def gated(request: ApiRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if any(name in request.headers for name in CREDENTIAL_HEADERS):
                raise CredentialsRefused()
            request.client_origin = request_origin(request)
            provisioning.admit_client(
                action=action, origin=request.client_origin, now=timezone.now()
            )
            return handler(request, *args, **kwargs)

        return gated

    return wrap


def _optional_url(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        return ""
    try:
        if not isinstance(value, str) or len(value) > URL_MAX_LENGTH:
            raise ValidationError("")
        URLValidator(schemes=["http", "https"])(value)
    except ValidationError as exc:
        raise InvalidInput(f"{name} must be an http(s) URL.") from exc
    return value


def _required_string(body: dict[str, Any], *path: str) -> str:
    value: Any = body
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{'.'.join(path)} is required and must be a string.")
    return value


@admitted("challenge")
def _challenge(request: HttpRequest) -> HttpResponse:
    challenge = provisioning.issue_provisioning_challenge(now=timezone.now())
    return envelope.success(
        {
            "challengeToken": challenge.token,
            "seed": challenge.seed,
            "k": challenge.k,
            "g": challenge.g,
            "expiresAt": iso(challenge.expires_at),
        }
    )


@admitted("previews")
def _create(request: ApiRequest) -> HttpResponse:
    body = json_object(request)
    if str(body.get("acceptTermsOfService", "")).lower() != "yes":
        raise InvalidInput(
            'Accept the terms of service with "acceptTermsOfService": "yes".'
        )
    event_code = body.get("eventCode")
    if event_code is not None and not isinstance(event_code, str):
        raise provisioning.EventCodeMalformed()
    made = provisioning.provision_account(
        origin=request.client_origin,
        now=timezone.now(),
        challenge_token=_required_string(body, "challengeToken"),
        checkpoints=_required_string(body, "solution", "checkpoints"),
        user_agent=request.headers.get("User-Agent", ""),
        terms_of_service_url=_optional_url(body, "termsOfService"),
        privacy_policy_url=_optional_url(body, "privacyPolicy"),
        event_code=event_code,
    )
    account = made.account
    result: dict[str, Any] = {
        "account": {
            "id": account.id,
            "name": account.name,
            "type": "standard",
            "apiToken": made.api_token,
            "tokenId": str(made.api_token_id),
            "expiresAt": iso(account.claim_expires_at),
        },
        "claim": {"url": made.claim_url, "expiresAt": iso(account.claim_expires_at)},
    }
    if event_code is not None:
        result["eventCodeAccepted"] = True
    return envelope.success(result)


def _status(request: HttpRequest, account_id: str) -> HttpResponse:
    token = token_for_status(raw_token=bearer_token(request), account_id=account_id)
    account = token.account
    return envelope.success(
        {
            "id": account.id,
            "name": account.name,
            "state": claims.claim_page(
                claims.account_claim_status(
                    account=account, user=None, now=timezone.now()
                )
            ).agent_state,
            "expiresAt": iso(account.claim_expires_at),
            "claim": {
                "expiresAt": iso(account.claim_expires_at),
                "claimedAt": iso(account.claimed_at),
            },
        }
    )


challenge = endpoint(auth=False)({"POST": _challenge})
previews = endpoint(auth=False)({"POST": _create})
preview_status = endpoint(auth=False)({"GET": _status})
