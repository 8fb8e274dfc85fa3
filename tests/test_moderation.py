"""Moderation services: each action's state before and after, its audit row
naming the moderator, and what the rest of the product then does."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.exceptions import (
    AccountSuspended,
    ClaimExpired,
    Conflict,
    InvalidInput,
    TokenRevoked,
)
from accounts.models import ApiToken, AuditEvent, BlockedOrigin, CloudAccount, Event
from accounts.services import moderation, purge
from accounts.services.claims import confirm_claim
from accounts.services.previews.state import desired_previews
from accounts.services.provisioning import OriginBlocked, admit_client, client_origin
from accounts.services.tokens import authenticate_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def moderator(django_user_model):
    return django_user_model.objects.create_user(
        username="mod", email="mod@example.com", password="x", is_staff=True
    )


def trail(account, kind):
    return AuditEvent.objects.filter(account=account, kind=kind)


def token_works(made, now) -> bool:
    try:
        authenticate_token(raw_token=made.api_token, account_id=None, now=now)
    except TokenRevoked:
        return False
    return True


def test_suspend_stops_tokens_claims_and_previews_until_lifted(
    provision, now, moderator, user
):
    made = provision(now=now)
    pk = made.account.pk

    moderation.suspend_account(account_id=pk, actor=moderator, now=now, reason="phish")

    account = CloudAccount.objects.get(pk=pk)
    assert (account.state, account.state_before_suspension) == ("suspended", "pending")
    event = trail(account, AuditEvent.Kind.SUSPENDED).get()
    assert (event.actor, event.details["reason"]) == (moderator, "phish")
    assert not token_works(made, now)
    with pytest.raises(AccountSuspended):
        confirm_claim(key=made.claim_key, account_id=pk, user=user, now=now)
    assert desired_previews(now=now).gone[account.subdomain] == ("suspended", "")

    moderation.unsuspend_account(account_id=pk, actor=moderator, now=now)

    account.refresh_from_db()
    assert (account.state, account.state_before_suspension) == ("pending", "")
    assert trail(account, AuditEvent.Kind.UNSUSPENDED).get().actor == moderator
    assert token_works(made, now)
    assert account.subdomain not in desired_previews(now=now).gone
    confirm_claim(key=made.claim_key, account_id=pk, user=user, now=now)


def test_a_claimed_account_returns_to_its_owner_after_a_suspension(
    provision, now, moderator, user
):
    made = provision(now=now)
    confirm_claim(key=made.claim_key, account_id=made.account.pk, user=user, now=now)
    moderation.suspend_account(account_id=made.account.pk, actor=moderator, now=now)
    moderation.unsuspend_account(account_id=made.account.pk, actor=moderator, now=now)
    account = CloudAccount.objects.get(pk=made.account.pk)
    assert (account.state, account.owner) == ("claimed", user)


@pytest.mark.parametrize(
    ("action", "state"),
    [
        (moderation.suspend_account, CloudAccount.State.SUSPENDED),
        (moderation.suspend_account, CloudAccount.State.EXPIRED),
        (moderation.unsuspend_account, CloudAccount.State.PENDING),
        (moderation.expire_account_now, CloudAccount.State.CLAIMED),
        (moderation.expire_account_now, CloudAccount.State.EXPIRED),
    ],
)
def test_actions_that_would_change_nothing_are_refused_and_not_audited(
    provision, now, moderator, action, state
):
    account = provision(now=now).account
    CloudAccount.objects.filter(pk=account.pk).update(state=state)
    before = AuditEvent.objects.count()
    with pytest.raises(Conflict):
        action(account_id=account.pk, actor=moderator, now=now)
    assert CloudAccount.objects.get(pk=account.pk).state == state
    assert AuditEvent.objects.count() == before


def test_extending_moves_the_one_deadline(provision, now, moderator):
    account = provision(now=now).account
    old = account.claim_expires_at

    moderation.extend_claim_window(
        account_id=account.pk, actor=moderator, now=now, by=timedelta(hours=2)
    )

    account.refresh_from_db()
    assert account.claim_expires_at == old + timedelta(hours=2)
    assert account.claim_links.get().deadline == account.claim_expires_at
    details = trail(account, AuditEvent.Kind.EXTENDED).get().details
    assert details["by_seconds"] == 7200
    # The purge now waits for the new deadline.
    later = old + timedelta(minutes=1)
    assert purge.purge_expired_accounts(now=later, batch_size=10).accounts == 0


@pytest.mark.parametrize(
    "by", [timedelta(0), timedelta(minutes=-5), timedelta(hours=24)]
)
def test_extending_is_bounded(provision, now, moderator, settings, by):
    settings.CLAIMPORTAL_MAX_EXTENSION = timedelta(hours=24)
    account = provision(now=now).account  # its deadline is an hour away
    with pytest.raises(InvalidInput):
        moderation.extend_claim_window(
            account_id=account.pk, actor=moderator, now=now, by=by
        )
    assert CloudAccount.objects.get(pk=account.pk).claim_expires_at == (
        account.claim_expires_at
    )


def test_a_closed_window_cannot_be_extended(provision, now, moderator):
    account = provision(now=now - timedelta(hours=2)).account
    with pytest.raises(Conflict):
        moderation.extend_claim_window(
            account_id=account.pk, actor=moderator, now=now, by=timedelta(hours=1)
        )


def test_expire_now_refuses_tokens_and_claims_and_the_next_purge_deletes(
    provision, now, moderator, user
):
    made = provision(now=now)

    moderation.expire_account_now(account_id=made.account.pk, actor=moderator, now=now)

    account = CloudAccount.objects.get(pk=made.account.pk)
    assert account.state == "expired" and account.purged_at is None
    assert trail(account, AuditEvent.Kind.EXPIRED).get().actor == moderator
    with pytest.raises(TokenRevoked) as refused:
        authenticate_token(raw_token=made.api_token, account_id=None, now=now)
    assert "expired" in refused.value.message
    with pytest.raises(ClaimExpired):
        confirm_claim(key=made.claim_key, account_id=account.pk, user=user, now=now)
    assert purge.purge_expired_accounts(now=now, batch_size=10).accounts == 1


def test_revoking_tokens_names_the_moderator_to_the_agent(provision, now, moderator):
    made = provision(now=now)

    assert (
        moderation.revoke_account_tokens(
            account_id=made.account.pk, actor=moderator, now=now
        )
        == 1
    )

    token = ApiToken.objects.get(account=made.account)
    assert token.revoked_because == ApiToken.RevokedBecause.MODERATOR
    with pytest.raises(TokenRevoked) as refused:
        authenticate_token(raw_token=made.api_token, account_id=None, now=now)
    assert "revoked by a moderator" in refused.value.message
    event = trail(made.account, AuditEvent.Kind.TOKEN_REVOKED).get()
    assert event.details == {"tokens": [token.prefix]}
    with pytest.raises(Conflict):
        moderation.revoke_account_tokens(
            account_id=made.account.pk, actor=moderator, now=now
        )


def test_blocking_the_origin_refuses_provisioning_from_it(provision, now, moderator):
    origin = client_origin("198.51.100.7")
    account = provision(now=now, origin_hash=origin.origin_hash).account
    admit_client(action="test-before", origin=origin, now=now)

    blocked = moderation.block_account_origin(
        account_id=account.pk, actor=moderator, now=now, reason="phishing kit"
    )
    again = moderation.block_account_origin(
        account_id=account.pk, actor=moderator, now=now
    )

    assert blocked == again
    assert BlockedOrigin.objects.get().origin_hash == origin.origin_hash
    assert trail(account, AuditEvent.Kind.ORIGIN_BLOCKED).count() == 2
    with pytest.raises(OriginBlocked):
        admit_client(action="test-after", origin=origin, now=now)
    admit_client(action="test-other", origin=client_origin("198.51.100.8"), now=now)


@pytest.mark.parametrize(
    ("blocked", "neighbour", "outside", "prefixes"),
    [
        ("2001:db8:1:2::7", "2001:db8:1:2:ffff:1:2:3", "2001:db8:1:3::7", {}),
        ("198.51.100.7", None, "198.51.100.8", {}),
        (
            "2001:db8:1:2::7",
            "2001:db8:1:ff::1",
            "2001:db8:2::7",
            {"CLAIMPORTAL_BLOCK_PREFIX_V6": 48},
        ),
        (
            "198.51.100.7",
            "198.51.100.200",
            "198.51.101.7",
            {"CLAIMPORTAL_BLOCK_PREFIX_V4": 24},
        ),
    ],
    ids=["v6-64", "v4-address", "v6-48", "v4-24"],
)
def test_blocking_an_origin_refuses_its_network_at_provisioning(
    client, moderator, settings, blocked, neighbour, outside, prefixes
):
    """Through the provisioning API, as the blocked agent's neighbours call it."""
    from tests.test_provisioning_api import Agent

    for name, value in prefixes.items():
        setattr(settings, name, value)
    made = Agent(client, ip=blocked).provision()
    assert made.status_code == 200, made.content
    account_id = made.json()["result"]["account"]["id"]
    moderation.block_account_origin(
        account_id=account_id, actor=moderator, now=timezone.now()
    )

    for address in filter(None, [blocked, neighbour]):
        # The first call of provisioning already says no.
        refused = Agent(client, ip=address).post("/challenge")
        assert refused.status_code == 403, address
        assert refused.json()["errors"][0]["code"] == OriginBlocked.code
    assert Agent(client, ip=outside).provision().status_code == 200


def test_an_expired_block_lets_the_origin_back(provision, now, moderator):
    origin = client_origin("198.51.100.9")
    account = provision(now=now, origin_hash=origin.origin_hash).account
    moderation.block_account_origin(
        account_id=account.pk,
        actor=moderator,
        now=now,
        expires_at=now + timedelta(days=1),
    )
    with pytest.raises(OriginBlocked):
        admit_client(action="t1", origin=origin, now=now)
    admit_client(action="t2", origin=origin, now=now + timedelta(days=2))


def test_events_open_and_close(now):
    event = Event.objects.create(
        code="hack",
        starts_at=now,
        ends_at=now + timedelta(days=1),
        claim_window=timedelta(hours=3),
        quota=10,
    )
    assert moderation.set_events_disabled(event_ids=[event.pk], disabled=True) == 1
    assert moderation.set_events_disabled(event_ids=[event.pk], disabled=True) == 0
    assert Event.objects.get().disabled


def test_the_operations_summary(provision, now, user):
    noon = now.replace(hour=12, minute=0, second=0, microsecond=0)
    # Today: two claimed, after 10 and 30 minutes; one expired and purged; one
    # waiting; one past its deadline, not purged yet. Yesterday: one claimed.
    old = provision(now=noon - timedelta(days=1))
    confirm_claim(
        key=old.claim_key,
        account_id=old.account.pk,
        user=user,
        now=old.account.created_at,
    )
    for minutes in (10, 30):
        made = provision(now=noon - timedelta(hours=3))
        confirm_claim(
            key=made.claim_key,
            account_id=made.account.pk,
            user=user,
            now=noon - timedelta(hours=3) + timedelta(minutes=minutes),
        )
    provision(now=noon - timedelta(hours=3))
    purge.purge_expired_accounts(now=noon - timedelta(hours=1), batch_size=10)
    provision(now=noon)
    provision(now=noon - timedelta(hours=1, seconds=1))

    summary = moderation.operations_summary(now=noon)

    assert (summary.pending, summary.created_today) == (1, 5)
    assert (summary.claimed_today, summary.expired_today) == (2, 2)
    assert summary.claim_rate == 0.5
    assert summary.median_time_to_claim == timedelta(minutes=20)
    assert summary.purge_backlog == 1
    assert summary.last_purge.accounts == 1
    assert summary.open_reports == 0
