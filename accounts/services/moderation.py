"""Moderation: what an operator does to a cloud account, and what they see.

Every action locks the account, re-checks its state after the lock, writes one
audit row naming the moderator, and once committed asks the preview runtime to
re-read the database, so a suspended preview stops serving in seconds.
Actions that would change nothing raise Conflict and write nothing.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone
from django.utils.timesince import timeuntil

from accounts.exceptions import Conflict, InvalidInput, NotFound
from accounts.models import (
    AbuseReport,
    ApiToken,
    AuditEvent,
    BlockedOrigin,
    CloudAccount,
    Event,
    PurgeRun,
    User,
)
from accounts.services import purge
from accounts.services.audit import record_event
from accounts.services.previews.client import reconcile_now
from accounts.services.tokens import revoke_tokens

State = CloudAccount.State


def _locked(account_id: str) -> CloudAccount:
    """The account, locked for this transaction. Raises NotFound."""
    account = CloudAccount.objects.select_for_update().filter(pk=account_id).first()
    if account is None or account.purged_at is not None:
        raise NotFound("No such account (it may have been purged).")
    return account


def _unclaimed(account: CloudAccount) -> bool:
    return State.PENDING in (account.state, account.state_before_suspension)


def _tell_previews() -> None:
    transaction.on_commit(reconcile_now)


@transaction.atomic
def suspend_account(
    *, account_id: str, actor: User, now: datetime, reason: str = ""
) -> CloudAccount:
    """Stop the account: its previews answer with the suspended page, its
    tokens are refused and its claim link shows "suspended". Reversible with
    ``unsuspend_account``; an unclaimed account is still purged at its
    deadline. Raises Conflict when already suspended or expired."""
    account = _locked(account_id)
    if account.state not in (State.PENDING, State.CLAIMED):
        raise Conflict(f"The account is {account.get_state_display().lower()}.")
    account.state_before_suspension = account.state
    account.state = State.SUSPENDED
    account.save(update_fields=["state", "state_before_suspension"])
    record_event(
        account=account,
        kind=AuditEvent.Kind.SUSPENDED,
        actor=actor,
        details={"reason": reason, "previous_state": account.state_before_suspension},
    )
    _tell_previews()
    return account


@transaction.atomic
def unsuspend_account(*, account_id: str, actor: User, now: datetime) -> CloudAccount:
    """Return a suspended account to the state it was in. Its deadline is
    unchanged: if that passed meanwhile, the next purge takes it. Raises
    Conflict when it is not suspended."""
    account = _locked(account_id)
    if account.state != State.SUSPENDED:
        raise Conflict("The account is not suspended.")
    account.state = account.state_before_suspension or State.PENDING
    account.state_before_suspension = ""
    account.save(update_fields=["state", "state_before_suspension"])
    record_event(
        account=account,
        kind=AuditEvent.Kind.UNSUSPENDED,
        actor=actor,
        details={"state": account.state},
    )
    _tell_previews()
    return account


@transaction.atomic
def extend_claim_window(
    *, account_id: str, actor: User, now: datetime, by: timedelta
) -> CloudAccount:
    """Give the person more time to claim: the deadline moves ``by`` later, to
    at most CLAIMPORTAL_MAX_EXTENSION from now. A window that has closed stays closed.

    Raises InvalidInput (``by`` not positive, or past the bound) and Conflict
    (not waiting for a claim).
    """
    limit = settings.CLAIMPORTAL_MAX_EXTENSION
    if by <= timedelta(0):
        raise InvalidInput("Extend by a positive amount of time.")
    account = _locked(account_id)
    if not account.is_claimable(now):
        raise Conflict("The account is not waiting for a claim.")
    old_deadline = account.claim_expires_at
    new_deadline = old_deadline + by
    if new_deadline - now > limit:
        raise InvalidInput(
            f"The claim window may reach at most {timeuntil(now + limit, now)} "
            "from now."
        )
    account.claim_expires_at = new_deadline
    account.save(update_fields=["claim_expires_at"])
    record_event(
        account=account,
        kind=AuditEvent.Kind.EXTENDED,
        actor=actor,
        details={
            "by_seconds": int(by.total_seconds()),
            "from": old_deadline.isoformat(),
            "to": new_deadline.isoformat(),
        },
    )
    _tell_previews()
    return account


@transaction.atomic
def expire_account_now(*, account_id: str, actor: User, now: datetime) -> CloudAccount:
    """End an unclaimed account's window now: its tokens and claim link say
    "expired" at once, and the next purge deletes its data (use
    ``purge.purge_account_now`` to delete it at once). Raises Conflict for an
    account someone owns, or one already expired."""
    account = _locked(account_id)
    if not _unclaimed(account):
        raise Conflict(f"The account is {account.get_state_display().lower()}.")
    previous = account.state
    account.state = State.EXPIRED
    account.state_before_suspension = ""
    account.claim_expires_at = min(account.claim_expires_at, now)
    account.save(update_fields=["state", "state_before_suspension", "claim_expires_at"])
    revoke_tokens(account=account, because=ApiToken.RevokedBecause.EXPIRED, now=now)
    record_event(
        account=account,
        kind=AuditEvent.Kind.EXPIRED,
        actor=actor,
        details={"previous_state": previous},
    )
    _tell_previews()
    return account


@transaction.atomic
def revoke_account_tokens(*, account_id: str, actor: User, now: datetime) -> int:
    """Revoke every usable API token of the account (the agent's and the
    owner's); each then says a moderator revoked it. Returns how many.
    Raises Conflict when there is none to revoke."""
    account = _locked(account_id)
    active = account.tokens.active(now)
    prefixes = list(active.values_list("prefix", flat=True))
    if not prefixes:
        raise Conflict("The account has no usable tokens.")
    revoke_tokens(account=account, because=ApiToken.RevokedBecause.MODERATOR, now=now)
    record_event(
        account=account,
        kind=AuditEvent.Kind.TOKEN_REVOKED,
        actor=actor,
        details={"tokens": prefixes},
    )
    return len(prefixes)


@transaction.atomic
def block_account_origin(
    *,
    account_id: str,
    actor: User,
    now: datetime,
    reason: str = "",
    expires_at: datetime | None = None,
) -> BlockedOrigin:
    """Refuse new temporary accounts from where this one came: its origin
    hash, which names its network (an IPv4 address, an IPv6 /64 by default),
    joins the provisioning blocklist. Blocking twice keeps one entry.
    Raises Conflict when the account has no recorded origin."""
    account = _locked(account_id)
    if not account.origin_hash:
        raise Conflict("The account has no recorded origin to block.")
    blocked = (
        BlockedOrigin.objects.filter(origin_hash=account.origin_hash)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .first()
    )
    if blocked is None:
        blocked = BlockedOrigin.objects.create(
            origin_hash=account.origin_hash,
            reason=reason or f"Blocked from account {account.pk} by {actor}",
            created_at=now,
            expires_at=expires_at,
        )
    record_event(
        account=account,
        kind=AuditEvent.Kind.ORIGIN_BLOCKED,
        actor=actor,
        origin_hash=account.origin_hash,
        details={"blocked_origin": blocked.pk, "reason": blocked.reason},
    )
    return blocked


def set_events_disabled(*, event_ids: list[int], disabled: bool) -> int:
    """Open or close events for new accounts; returns how many changed."""
    return (
        Event.objects.filter(pk__in=event_ids)
        .exclude(disabled=disabled)
        .update(disabled=disabled)
    )


# --- The operations summary -------------------------------------------------------


@dataclass(frozen=True)
class OperationsSummary:
    """Today (since midnight UTC) and now, for the admin's front page."""

    pending: int
    created_today: int
    claimed_today: int
    expired_today: int
    median_time_to_claim: timedelta | None
    purge_backlog: int
    open_reports: int
    last_purge: PurgeRun | None

    @property
    def claim_rate(self) -> float | None:
        """Of today's accounts that reached an end, the share that was claimed."""
        decided = self.claimed_today + self.expired_today
        return self.claimed_today / decided if decided else None


def operations_summary(*, now: datetime) -> OperationsSummary:
    """Four queries, whatever the number of accounts."""
    midnight = timezone.localtime(now).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    ended_today = Q(claim_expires_at__gte=midnight, claim_expires_at__lte=now) & Q(
        state__in=[State.PENDING, State.EXPIRED]
    )
    counts = CloudAccount.objects.aggregate(
        pending=Count("pk", filter=Q(state=State.PENDING) & ~purge.due(now)),
        created_today=Count("pk", filter=Q(created_at__gte=midnight)),
        claimed_today=Count("pk", filter=Q(claimed_at__gte=midnight)),
        expired_today=Count("pk", filter=ended_today),
        purge_backlog=Count("pk", filter=purge.due(now)),
    )
    return OperationsSummary(
        **counts,
        median_time_to_claim=_median_time_to_claim(
            since=midnight, count=counts["claimed_today"]
        ),
        open_reports=AbuseReport.objects.filter(handled_at__isnull=True).count(),
        last_purge=PurgeRun.objects.order_by("-started_at").first(),
    )


def _median_time_to_claim(*, since: datetime, count: int) -> timedelta | None:
    if not count:
        return None
    # The middle one or two, fetched with OFFSET: one query, no rows in memory.
    middle = list(
        CloudAccount.objects.filter(claimed_at__gte=since)
        .annotate(took=F("claimed_at") - F("created_at"))
        .order_by("took")
        .values_list("took", flat=True)[(count - 1) // 2 : count // 2 + 1]
    )
    return sum(middle, timedelta()) / len(middle) if middle else None
