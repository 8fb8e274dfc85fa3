"""Claiming: what a claim link may do now, taking ownership, declining, and the
API tokens an owner keeps for continued use."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from http import HTTPStatus

from django.db import transaction
from django.db.models import Q

from accounts import tokens
from accounts.exceptions import (
    AccountSuspended,
    AlreadyClaimed,
    ClaimError,
    ClaimExpired,
    ClaimLinkUnknown,
    InvalidInput,
    NotFound,
)
from accounts.models import ApiToken, AuditEvent, ClaimLink, CloudAccount, User
from accounts.services.assets import end_upload_sessions
from accounts.services.audit import record_event
from accounts.services.purge import purge_account_now
from accounts.services.tokens import IssuedToken, issue_token, revoke_tokens

logger = logging.getLogger(__name__)

# How long a claimant may let the agent keep deploying after the claim.
MAX_AGENT_GRACE = timedelta(hours=24)


class ClaimStatus(StrEnum):
    OPEN = "open"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    DELETED = "deleted"  # the link holder declined it
    YOURS = "yours"
    TAKEN = "taken"
    SUSPENDED = "suspended"


def account_claim_status(
    *, account: CloudAccount, user: User | None, now: datetime
) -> ClaimStatus:
    """Where ``account`` stands for claiming, read from its row alone (never
    from the audit trail): what the edge, the admin and the API show."""
    if account.state == CloudAccount.State.SUSPENDED:
        return ClaimStatus.SUSPENDED
    if account.state == CloudAccount.State.CLAIMED:
        mine = user is not None and account.owner_id == user.pk
        return ClaimStatus.YOURS if mine else ClaimStatus.TAKEN
    if account.declined_at is not None:
        return ClaimStatus.DELETED
    if not account.is_claimable(now):
        return ClaimStatus.EXPIRED
    return ClaimStatus.OPEN


def claim_status(
    *, link: ClaimLink | None, user: User | None, now: datetime
) -> ClaimStatus:
    """What the holder of ``link`` may do with it now. The one place these
    rules live: pages read it, and the services re-check it under lock."""
    if link is None:
        return ClaimStatus.UNKNOWN
    status = account_claim_status(account=link.account, user=user, now=now)
    if status is ClaimStatus.OPEN and link.state != ClaimLink.State.ACTIVE:
        return ClaimStatus.UNKNOWN  # withdrawn while its account lives on
    return status


@dataclass(frozen=True)
class ClaimPage:
    """How one claim status is shown, wherever it is shown."""

    status: ClaimStatus
    http_status: HTTPStatus  # of the claim page
    label: str  # a few words, for the admin
    agent_state: str  # the API's account status
    refusal: type[ClaimError] | None = None  # what confirming or declining raises

    @property
    def template(self) -> str:
        name = "claim" if self.status is ClaimStatus.OPEN else f"claim_{self.status}"
        return f"accounts/{name}.html"

    @property
    def edge_page(self) -> str | None:
        """The edge's page for the account's preview hosts, which no longer serve."""
        return str(self.status) if self.status in _GONE_AT_THE_EDGE else None


_GONE_AT_THE_EDGE = {ClaimStatus.EXPIRED, ClaimStatus.DELETED, ClaimStatus.SUSPENDED}

# The one table from a claim status to its pages. (UNKNOWN concerns a link,
# never an account: the account it names, if any, is still waiting.)
CLAIM_PAGES: dict[ClaimStatus, ClaimPage] = {
    page.status: page
    for page in [
        ClaimPage(ClaimStatus.OPEN, HTTPStatus.OK, "Waiting for a claim", "pending"),
        ClaimPage(
            ClaimStatus.UNKNOWN,
            HTTPStatus.NOT_FOUND,
            "Link withdrawn",
            "pending",
            ClaimLinkUnknown,
        ),
        ClaimPage(
            ClaimStatus.EXPIRED, HTTPStatus.GONE, "Expired", "expired", ClaimExpired
        ),
        ClaimPage(
            ClaimStatus.DELETED,
            HTTPStatus.GONE,
            "Declined and deleted",
            "expired",
            ClaimExpired,
        ),
        ClaimPage(
            ClaimStatus.YOURS, HTTPStatus.OK, "Claimed", "claimed", AlreadyClaimed
        ),
        ClaimPage(
            ClaimStatus.TAKEN, HTTPStatus.CONFLICT, "Claimed", "claimed", AlreadyClaimed
        ),
        ClaimPage(
            ClaimStatus.SUSPENDED,
            HTTPStatus.FORBIDDEN,
            "Suspended",
            "suspended",
            AccountSuspended,
        ),
    ]
}


def claim_page(status: ClaimStatus) -> ClaimPage:
    """The page, label, API state and error of ``status``: the one mapping the
    claim views, the edge, the admin and the API read."""
    return CLAIM_PAGES[status]


def _lock_open_link(
    *, key: str, account_id: str, user: User | None, now: datetime
) -> ClaimLink:
    """Lock the account, then its link (the order purge uses too), and check
    after the locks that the link may still be acted on. Call inside a
    transaction."""
    found = (
        ClaimLink.objects.filter(key_hash=tokens.hash_secret(key))
        .values_list("pk", "account_id")
        .first()
    )
    if found is None or found[1] != account_id:
        raise ClaimLinkUnknown()
    account = CloudAccount.objects.select_for_update().filter(pk=account_id).first()
    link = ClaimLink.objects.select_for_update().filter(pk=found[0]).first()
    if account is None or link is None:
        raise ClaimLinkUnknown()
    link.account = account
    refusal = claim_page(claim_status(link=link, user=user, now=now)).refusal
    if refusal is not None:
        raise refusal()
    return link


@dataclass(frozen=True)
class ClaimResult:
    account: CloudAccount
    agent_token: IssuedToken | None  # only when the agent may keep deploying
    agent_until: datetime | None


@transaction.atomic
def confirm_claim(
    *,
    key: str,
    account_id: str,
    user: User,
    now: datetime,
    agent_grace: timedelta | None = None,
    origin_hash: str = "",
) -> ClaimResult:
    """Make ``user`` the owner of the account the claim ``key`` opens.

    ``account_id`` is the account the person reviewed: a key that opens another
    one is refused. Everything transfers at once: the account, the link (used),
    and the agent's temporary token, which is revoked, or with ``agent_grace``
    kept until then alongside a fresh AGENT_GRACE token. Whatever else the
    agent was handed before ends with it: asset uploads now (or when the grace
    ends), and every D1 link made before now (``d1.open_link`` refuses those,
    grace or not: a link must not show what the owner writes from now on).

    Raises ClaimLinkUnknown, ClaimExpired, AlreadyClaimed, AccountSuspended
    (checked after locking), InvalidInput (grace out of range).
    """
    if agent_grace is not None and not timedelta(0) < agent_grace <= MAX_AGENT_GRACE:
        raise InvalidInput("The agent may keep deploying for at most 24 hours.")
    link = _lock_open_link(key=key, account_id=account_id, user=user, now=now)
    account = link.account
    account.owner = user
    account.claimed_at = now
    account.state = CloudAccount.State.CLAIMED
    account.save(update_fields=["owner", "claimed_at", "state"])
    link.state = ClaimLink.State.USED
    link.used_at = now
    link.used_by = user
    link.save(update_fields=["state", "used_at", "used_by"])

    agent_token = agent_until = None
    if agent_grace is None:
        revoke_tokens(
            account=account,
            because=ApiToken.RevokedBecause.CLAIMED,
            now=now,
            kinds=[ApiToken.Kind.TEMPORARY],
        )
    else:
        agent_until = now + agent_grace
        # The agent's cached token keeps working until the grace ends, no longer.
        account.tokens.filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=agent_until),
            kind=ApiToken.Kind.TEMPORARY,
            revoked_at__isnull=True,
        ).update(expires_at=agent_until)
        agent_token = issue_token(
            account=account,
            kind=ApiToken.Kind.AGENT_GRACE,
            now=now,
            expires_at=agent_until,
            name="agent, kept after claim",
        )
    end_upload_sessions(account=account, by=agent_until or now)
    record_event(
        account=account,
        kind=AuditEvent.Kind.CLAIMED,
        actor=user,
        origin_hash=origin_hash,
        details={"agent_grace_until": agent_until.isoformat() if agent_until else None},
    )
    if agent_token is not None:
        _record_token_event(
            token=agent_token.token,
            kind=AuditEvent.Kind.TOKEN_CREATED,
            user=user,
            origin_hash=origin_hash,
        )
    return ClaimResult(
        account=account, agent_token=agent_token, agent_until=agent_until
    )


def decline_claim(
    *,
    key: str,
    account_id: str,
    now: datetime,
    user: User | None = None,
    origin_hash: str = "",
) -> CloudAccount:
    """Delete the deployment the claim ``key`` opens, now, instead of at expiry.

    Anyone holding the link may do this (signed in or not). In one transaction
    the account expires, the link is withdrawn and every token is refused; then
    the purge deletes its rows and bytes. Should that fail, the account is
    already expired and the next scheduled purge finishes the job. Must not be
    called inside a transaction (the purge commits on its own).

    Raises what ``confirm_claim`` raises for a link that is no longer open.
    """
    with transaction.atomic():
        link = _lock_open_link(key=key, account_id=account_id, user=user, now=now)
        account = link.account
        account.state = CloudAccount.State.EXPIRED
        account.claim_expires_at = now
        account.declined_at = now
        account.save(update_fields=["state", "claim_expires_at", "declined_at"])
        link.state = ClaimLink.State.REVOKED
        link.save(update_fields=["state"])
        revoke_tokens(account=account, because=ApiToken.RevokedBecause.EXPIRED, now=now)
        record_event(
            account=account,
            kind=AuditEvent.Kind.DECLINED,
            actor=user,
            actor_label="" if user else "claim link holder",
            origin_hash=origin_hash,
        )
    try:
        purge_account_now(account=account, now=now, actor=user)
    except Exception:  # the decline stands; the scheduled purge retries
        logger.exception("purge after decline of %s failed", account.pk)
    return account


# --- Tokens an owner keeps --------------------------------------------------------


def _record_token_event(
    *, token: ApiToken, kind: AuditEvent.Kind, user: User, origin_hash: str
) -> None:
    record_event(
        account=token.account,
        kind=kind,
        actor=user,
        origin_hash=origin_hash,
        details={"token": token.prefix, "token_kind": token.kind},
    )


@transaction.atomic
def create_owner_token(
    *, account_id: str, user: User, now: datetime, name: str, origin_hash: str = ""
) -> IssuedToken:
    """A new API token for an account ``user`` owns; its secret is returned once.

    Raises NotFound when the account is not the user's (or not claimed).
    """
    account = (
        CloudAccount.objects.select_for_update()
        .filter(pk=account_id, owner=user, state=CloudAccount.State.CLAIMED)
        .first()
    )
    if account is None:
        raise NotFound("No such account of yours.")
    issued = issue_token(
        account=account, kind=ApiToken.Kind.OWNER, now=now, name=name.strip()[:100]
    )
    _record_token_event(
        token=issued.token,
        kind=AuditEvent.Kind.TOKEN_CREATED,
        user=user,
        origin_hash=origin_hash,
    )
    return issued


@transaction.atomic
def revoke_owner_token(
    *, account_id: str, token_id: int, user: User, now: datetime, origin_hash: str = ""
) -> ApiToken:
    """Revoke any token of an account ``user`` owns (including an agent's that
    is still in its grace period). Revoking twice changes nothing.

    Raises NotFound when the token is not on one of the user's accounts.
    """
    token = (
        ApiToken.objects.select_for_update(of=("self",))
        .select_related("account")
        .filter(pk=token_id, account_id=account_id, account__owner=user)
        .first()
    )
    if token is None:
        raise NotFound("No such token on your account.")
    if token.revoked_at is None:
        token.revoked_at = now
        token.revoked_because = ApiToken.RevokedBecause.OWNER
        token.save(update_fields=["revoked_at", "revoked_because"])
        _record_token_event(
            token=token,
            kind=AuditEvent.Kind.TOKEN_REVOKED,
            user=user,
            origin_hash=origin_hash,
        )
    return token
