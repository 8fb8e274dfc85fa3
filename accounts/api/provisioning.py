"""The provisioning calls: a proof-of-work challenge, a temporary account for its
solution, and the account's status for the agent that made it.

wrangler shows only the status line of the first two calls (never the message),
so every refusal there picks a status whose text tells the reason.
"""

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.http import HttpResponse
from django.utils import timezone

from accounts.exceptions import Forbidden, InvalidInput
from accounts.http import request_origin
from accounts.services import claims, provisioning
from accounts.services.tokens import token_for_status

from . import envelope
from .inputs import Input, Nested, Text
from .kit import ApiRequest, bearer_token, endpoint, operation
from .openapi import PROVISIONING_ERRORS, ref
from .serializers import iso

TAG = "provisioning"

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


def admitted(action: str) -> Callable[[ApiRequest], None]:
    """A gate that lets through only a caller without credentials that the
    rate limits and the blocklist admit; every attempt counts, well formed or
    not. The handler finds the caller at ``request.client_origin``."""

    def gate(request: ApiRequest) -> None:
        if any(name in request.headers for name in CREDENTIAL_HEADERS):
            raise CredentialsRefused()
        request.client_origin = request_origin(request)
        provisioning.admit_client(
            action=action, origin=request.client_origin, now=timezone.now()
        )

    return gate


class HttpUrl(Text):
    def clean(self, value: Any, *, path: str, text: bool = False) -> str:
        try:
            if not isinstance(value, str) or len(value) > self.limit():
                raise ValidationError("")
            URLValidator(schemes=["http", "https"])(value)
        except ValidationError as exc:
            raise InvalidInput(f"{path} must be an http(s) URL.") from exc
        return value

    def constraints(self) -> dict[str, Any]:
        return {"format": "uri", "maxLength": self.limit()}


class Solution(Input):
    unknown = "ignore"
    checkpoints = Text(
        required=True,
        max_length=1 << 20,
        description="Standard base64 of the k+1 32-byte checkpoints.",
    )


class PreviewRequest(Input):
    """What wrangler sends for a temporary account (spec 4.2). Fields a newer
    wrangler may add are ignored."""

    unknown = "ignore"
    accept_terms_of_service = Text(
        key="acceptTermsOfService", max_length=16, description='"yes".'
    )
    terms_of_service = HttpUrl(key="termsOfService", max_length=URL_MAX_LENGTH)
    privacy_policy = HttpUrl(key="privacyPolicy", max_length=URL_MAX_LENGTH)
    challenge_token = Text(key="challengeToken", required=True, max_length=4096)
    solution = Nested(Solution, required=True)
    event_code = Text(
        key="eventCode",
        max_length=256,
        error_code=provisioning.EventCodeMalformed.code,
        description="Only with --event-code; malformed is 1035.",
    )


@operation(
    "A proof-of-work challenge for a temporary account.",
    tag=TAG,
    result=ref("Challenge"),
    errors={
        "403": "Credentials sent, or origin blocked.",
        "429": "Rate limited; see Retry-After.",
    },
)
def _challenge(request: ApiRequest) -> HttpResponse:
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


@operation(
    "A temporary account for a solved challenge: its token and claim URL.",
    tag=TAG,
    body=PreviewRequest,
    result=ref("PreviewAccount"),
    errors=PROVISIONING_ERRORS,
)
def _create(request: ApiRequest, *, body: PreviewRequest) -> HttpResponse:
    if (body.accept_terms_of_service or "").lower() != "yes":
        raise InvalidInput(
            'Accept the terms of service with "acceptTermsOfService": "yes".'
        )
    event_code = body.event_code
    made = provisioning.provision_account(
        origin=request.client_origin,
        now=timezone.now(),
        challenge_token=body.challenge_token,
        checkpoints=body.solution.checkpoints,
        user_agent=request.headers.get("User-Agent", ""),
        terms_of_service_url=body.terms_of_service or "",
        privacy_policy_url=body.privacy_policy or "",
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


@operation(
    "Claim status for the agent, with the temporary token even after the "
    "claim or expiry.",
    tag=TAG,
    result=ref("PreviewStatus"),
    auth=True,
)
def _status(request: ApiRequest, account_id: str) -> HttpResponse:
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


challenge = endpoint(auth=False, gate=admitted("challenge"))({"POST": _challenge})
previews = endpoint(auth=False, gate=admitted("previews"))({"POST": _create})
preview_status = endpoint(auth=False)({"GET": _status})
