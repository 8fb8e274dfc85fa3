"""Creating temporary cloud accounts: the account, its token and its claim link,
and the gate in front of it for unauthenticated callers (proof of work, rate
limits, the blocklist, event codes and their quotas)."""

import functools
import ipaddress
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F, Q
from django.urls import reverse

from accounts import tokens
from accounts.exceptions import DomainError, Forbidden, RateLimited
from accounts.models import (
    ApiToken,
    AuditEvent,
    BlockedOrigin,
    ClaimLink,
    CloudAccount,
    Event,
)
from accounts.services import pow
from accounts.services.audit import record_event
from accounts.services.ratelimit import count_requests, uncount_request
from accounts.services.tokens import issue_token
from claimportal.cache import now_and_after_commit

logger = logging.getLogger("claimportal.provisioning")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


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


def create_temporary_account(
    *,
    now: datetime,
    origin_hash: str = "",
    origin_hint: str = "",
    user_agent: str = "",
    terms_of_service_url: str = "",
    privacy_policy_url: str = "",
    terms_accepted: bool = False,
    event: Event | None = None,
    claim_window: timedelta | None = None,
) -> ProvisionedAccount:
    """Create a pending account with a workers.dev-style subdomain, a temporary
    API token and a claim link, ending at one real server-side deadline.

    ``claim_window`` overrides the configured window (an event brings its own).
    """
    window = claim_window or settings.CLAIMPORTAL_CLAIM_WINDOW
    fields = {
        "created_at": now,
        "claim_expires_at": now + window,
        "origin_hash": origin_hash,
        "origin_hint": origin_hint,
        "user_agent": user_agent[:300],
        "terms_of_service_url": terms_of_service_url,
        "privacy_policy_url": privacy_policy_url,
        "terms_accepted_at": now if terms_accepted or terms_of_service_url else None,
        "event": event,
    }
    for _attempt in range(5):
        subdomain = _new_subdomain()
        try:
            # The transaction itself when outermost (no savepoint round trips on
            # the hot path), a savepoint inside a caller's.
            with transaction.atomic():
                account = CloudAccount.objects.create(
                    name=subdomain, subdomain=subdomain, **fields
                )
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
        except IntegrityError:
            continue  # a subdomain collision: 32 random bits, so vanishingly rare
        return ProvisionedAccount(
            account=account,
            api_token=issued.secret,
            api_token_id=issued.token.pk,
            claim_key=claim_key,
        )
    raise RuntimeError("Could not find a free subdomain.")


# --- Where a request comes from -------------------------------------------------


@dataclass(frozen=True)
class ClientOrigin:
    """A client address as provisioning uses it. Rows keep only keyed hashes
    and the coarse hint. ``origin_hash`` names the network a block covers (an
    IPv4 address or an IPv6 /64 unless settings say other prefixes: one
    subscriber usually holds a whole /64), so blocking an account's origin
    blocks its neighbours there too; the rate-limit subject is the same
    network, hashed shorter."""

    ip: IPAddress | None
    origin_hash: str
    hint: str
    subject: str


def origin_hash_key() -> str:
    return settings.CLAIMPORTAL_ORIGIN_HASH_KEY or settings.SECRET_KEY


def client_origin(address: str) -> ClientOrigin:
    key = origin_hash_key()
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        unknown = tokens.keyed_origin_hash(address, key=key)
        return ClientOrigin(ip=None, origin_hash=unknown, hint="unknown", subject="?")
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    network = origin_network(ip)
    # A whole address is hashed as the address, as it always was.
    named = str(ip) if network.num_addresses == 1 else str(network)
    coarse = 24 if ip.version == 4 else 48
    return ClientOrigin(
        ip=ip,
        origin_hash=tokens.keyed_origin_hash(named, key=key),
        hint=(
            "loopback"
            if ip.is_loopback
            else str(ipaddress.ip_network(f"{ip}/{coarse}", strict=False))
        ),
        subject=tokens.keyed_origin_hash(str(network), key=key)[:32],
    )


def origin_network(ip: IPAddress) -> IPNetwork:
    """The network that stands for one client: what a block of its origin
    covers (CLAIMPORTAL_BLOCK_PREFIX_V4 and _V6)."""
    prefix = (
        settings.CLAIMPORTAL_BLOCK_PREFIX_V4
        if ip.version == 4
        else settings.CLAIMPORTAL_BLOCK_PREFIX_V6
    )
    return ipaddress.ip_network(f"{ip}/{prefix}", strict=False)


class OriginBlocked(Forbidden):
    code = 1120
    message = "Temporary accounts cannot be created from your network."


# Every provisioning call reads the blocklist, which changes rarely: calls read
# a snapshot from the shared cache, and every change to it drops the snapshot.
# A snapshot made from rows read just before a change can outlive that change
# by at most its lifetime.
_BLOCKLIST_KEY = "provisioning:blocklist"
_BLOCKLIST_SECONDS = 60


@dataclass(frozen=True)
class Blocklist:
    """The blocks in force when it was read, each with its end (None: never)."""

    hashes: dict[str, datetime | None]
    networks: list[tuple[IPNetwork, datetime | None]]

    def blocks(self, origin: ClientOrigin, now: datetime) -> bool:
        def in_force(until: datetime | None) -> bool:
            return until is None or until > now

        if origin.origin_hash in self.hashes and in_force(
            self.hashes[origin.origin_hash]
        ):
            return True
        return origin.ip is not None and any(
            origin.ip in network and in_force(until) for network, until in self.networks
        )


def _read_blocklist(now: datetime) -> Blocklist:
    hashes: dict[str, datetime | None] = {}
    networks = []
    rows = BlockedOrigin.objects.filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    ).values_list("network", "origin_hash", "expires_at")
    for network, blocked_hash, until in rows:
        if blocked_hash:
            known = hashes.get(blocked_hash, now)
            # None is "for good", and outlasts any time.
            if known is None or until is None:
                hashes[blocked_hash] = None
            else:
                hashes[blocked_hash] = max(known, until)
        if not network:
            continue
        try:
            parsed = ipaddress.ip_network(network.strip(), strict=False)
        except ValueError:
            logger.warning("Blocked origin %r is not an address or network", network)
            continue
        networks.append((parsed, until))
    return Blocklist(hashes=hashes, networks=networks)


def is_origin_blocked(*, origin: ClientOrigin, now: datetime) -> bool:
    """Whether an unexpired BlockedOrigin names this origin's hash or a network
    that holds its address."""
    cache = caches["default"]
    kept = cache.get(_BLOCKLIST_KEY)
    if kept is not None:
        # Kept as plain values (dict, list, ipaddress, datetime), which any
        # later version of this code can read back.
        blocklist = Blocklist(*kept)
    else:
        blocklist = _read_blocklist(now)
        cache.set(
            _BLOCKLIST_KEY,
            (blocklist.hashes, blocklist.networks),
            _BLOCKLIST_SECONDS,
        )
    return blocklist.blocks(origin, now)


def forget_blocklist() -> None:
    """Drop the snapshot: the next call reads the blocklist afresh."""
    caches["default"].delete(_BLOCKLIST_KEY)


def blocklist_changed(**_signal: Any) -> None:
    """Drop the snapshot (now and after commit). The receiver of every save
    and delete of a BlockedOrigin, however a block is made or lifted (admin,
    moderation, a shell)."""
    now_and_after_commit(forget_blocklist)


def admit_client(*, action: str, origin: ClientOrigin, now: datetime) -> None:
    """Count one provisioning call against the client's and everyone's limits,
    then check the blocklist; raise RateLimited or OriginBlocked. A client over
    its own limit gets its call back from the global count, so one flood cannot
    use up everyone's budget, and costs no database query."""
    window = settings.CLAIMPORTAL_RATE_LIMIT_WINDOW_SECONDS
    mine, everyone = f"{action}:client:{origin.subject}", f"{action}:global"
    (own_count, global_count), seconds_left = count_requests(
        buckets=[mine, everyone], window=window, now=now
    )
    if own_count > settings.CLAIMPORTAL_RATE_LIMIT_PER_IP:
        uncount_request(bucket=everyone, window=window, now=now)
        raise RateLimited(
            "Too many temporary-account requests from your network.",
            retry_after=seconds_left,
        )
    if global_count > settings.CLAIMPORTAL_RATE_LIMIT_GLOBAL:
        raise RateLimited(
            "Too many temporary accounts are being requested. Try again soon.",
            retry_after=seconds_left,
        )
    if is_origin_blocked(origin=origin, now=now):
        raise OriginBlocked()


# --- Event codes (the codes and texts wrangler maps, spec 6.7) ------------------

EVENT_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class EventCodeMalformed(DomainError):
    code = 1035
    message = "The event code is malformed. Check it and try again."


class EventNotFound(DomainError):
    code = 1036
    status = HTTPStatus.NOT_FOUND
    message = "The event code was not found. Check it and try again."


class EventNotStarted(DomainError):
    code = 1037
    status = HTTPStatus.FORBIDDEN
    message = "This event has not started yet."


class EventEnded(DomainError):
    code = 1038
    status = HTTPStatus.GONE
    message = "This event has ended."


class EventDisabled(DomainError):
    code = 1039
    status = HTTPStatus.FORBIDDEN
    message = "This event is disabled. Contact the event organizer."


class EventExhausted(DomainError):
    code = 1040
    status = HTTPStatus.CONFLICT
    message = "This event has no temporary accounts remaining."


class EventAccountFailed(DomainError):
    code = 1041
    status = HTTPStatus.SERVICE_UNAVAILABLE
    message = (
        "The event account could not be prepared. "
        "Try again later or contact the event organizer."
    )


def _ensure_event_open(event: Event, now: datetime) -> None:
    if event.disabled:
        raise EventDisabled()
    if now < event.starts_at:
        raise EventNotStarted()
    if now >= event.ends_at:
        raise EventEnded()


def take_event_seat(*, code: str, now: datetime) -> Event:
    """Take one of the event's seats, or raise the event error that says why not.

    Call it inside the transaction that creates the account, so a failed
    creation gives the seat back. Raises EventCodeMalformed, EventNotFound,
    EventDisabled, EventNotStarted, EventEnded or EventExhausted.
    """
    if not EVENT_CODE.fullmatch(code):
        raise EventCodeMalformed()
    event = Event.objects.filter(code=code).first()
    if event is None:
        raise EventNotFound()
    _ensure_event_open(event, now)
    # One conditional UPDATE: PostgreSQL re-evaluates the condition after
    # waiting for a concurrent taker's row lock, so the last seat has one winner.
    taken = Event.objects.filter(
        pk=event.pk,
        disabled=False,
        starts_at__lte=now,
        ends_at__gt=now,
        accounts_created__lt=F("quota"),
    ).update(accounts_created=F("accounts_created") + 1)
    if not taken:
        event.refresh_from_db()
        _ensure_event_open(event, now)  # it may have changed since the read
        raise EventExhausted()
    return event


# --- The two calls wrangler makes -----------------------------------------------


def issue_provisioning_challenge(*, now: datetime) -> pow.Challenge:
    """A proof-of-work challenge at the configured difficulty."""
    return pow.issue_challenge(
        now=now,
        k=settings.CLAIMPORTAL_POW_K,
        g=settings.CLAIMPORTAL_POW_G,
        ttl=settings.CLAIMPORTAL_POW_CHALLENGE_TTL,
    )


def provision_account(
    *,
    origin: ClientOrigin,
    now: datetime,
    challenge_token: str,
    checkpoints: str,
    user_agent: str = "",
    terms_of_service_url: str = "",
    privacy_policy_url: str = "",
    event_code: str | None = None,
) -> ProvisionedAccount:
    """Create a temporary account for an admitted client (see admit_client) that
    solved a challenge and accepted the terms (the caller checked both).

    With ``event_code`` the account takes one of the event's seats and its claim
    window. Raises the pow.Challenge* and Solution* errors, the Event* errors,
    and EventAccountFailed when an event account could not be written.
    """
    pow.redeem_challenge(
        token=challenge_token,
        checkpoints=checkpoints,
        now=now,
        spot_checks=settings.CLAIMPORTAL_POW_SPOT_CHECKS,
    )
    create = functools.partial(
        create_temporary_account,
        now=now,
        origin_hash=origin.origin_hash,
        origin_hint=origin.hint,
        user_agent=user_agent,
        terms_of_service_url=terms_of_service_url,
        privacy_policy_url=privacy_policy_url,
        terms_accepted=True,
    )
    if event_code is None:
        return create()
    try:
        with transaction.atomic():
            event = take_event_seat(code=event_code, now=now)
            return create(event=event, claim_window=event.claim_window)
    except (DatabaseError, OverflowError, RuntimeError) as exc:
        logger.exception("could not create an account for an event")
        raise EventAccountFailed() from exc
