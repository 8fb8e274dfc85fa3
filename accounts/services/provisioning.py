"""Creating temporary cloud accounts: the account, its token and its claim link."""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse

from accounts import tokens
from accounts.models import ApiToken, AuditEvent, ClaimLink, CloudAccount, Event
from accounts.services.audit import record_event
from accounts.services.tokens import issue_token


@dataclass(frozen=True)
class ProvisionedAccount:
    account: CloudAccount
    api_token: str  # raw secrets: returned once to the caller, stored only hashed
    api_token_id: int
    claim_key: str

    @property
    def claim_url(self) -> str:
        return claim_url(self.claim_key)


def claim_url(key: str) -> str:
    return settings.PUBLIC_BASE_URL + reverse("accounts:claim", args=[key])


def _new_subdomain() -> str:
    return f"preview-{secrets.token_hex(4)}"


@transaction.atomic
def create_temporary_account(
    *,
    now: datetime,
    origin_hash: str = "",
    origin_hint: str = "",
    user_agent: str = "",
    terms_of_service_url: str = "",
    privacy_policy_url: str = "",
    event: Event | None = None,
    claim_window: timedelta | None = None,
) -> ProvisionedAccount:
    """Create a pending account with a workers.dev-style subdomain, a temporary
    API token and a claim link; both deadlines are real server-side times.

    ``claim_window`` overrides the configured window (an event brings its own).
    """
    window = claim_window or settings.CLAIMPORTAL_CLAIM_WINDOW
    lifetime = max(window, settings.CLAIMPORTAL_ACCOUNT_LIFETIME)
    for _attempt in range(5):
        subdomain = _new_subdomain()
        try:
            with transaction.atomic():
                account = CloudAccount.objects.create(
                    name=subdomain,
                    subdomain=subdomain,
                    created_at=now,
                    expires_at=now + lifetime,
                    claim_expires_at=now + window,
                    origin_hash=origin_hash,
                    origin_hint=origin_hint,
                    user_agent=user_agent[:300],
                    terms_of_service_url=terms_of_service_url,
                    privacy_policy_url=privacy_policy_url,
                    terms_accepted_at=now if terms_of_service_url else None,
                    event=event,
                )
            break
        except IntegrityError:
            continue  # a subdomain collision: 32 random bits, so vanishingly rare
    else:
        raise RuntimeError("Could not find a free subdomain.")

    issued = issue_token(
        account=account,
        kind=ApiToken.Kind.TEMPORARY,
        now=now,
        name="wrangler --temporary",
    )
    claim_key = tokens.new_claim_key()
    ClaimLink.objects.create(
        account=account,
        key_hash=tokens.hash_secret(claim_key),
        created_at=now,
        expires_at=account.claim_expires_at,
    )
    record_event(
        account=account,
        kind=AuditEvent.Kind.PROVISIONED,
        actor_label="agent",
        origin_hash=origin_hash,
        details={
            "event": event.code if event else None,
            "user_agent": user_agent[:300],
        },
    )
    return ProvisionedAccount(
        account=account,
        api_token=issued.secret,
        api_token_id=issued.token.pk,
        claim_key=claim_key,
    )
