"""confirm_claim and decline_claim: what changes, what is refused, and what the
agent's token says afterwards."""

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.urls import reverse

from accounts.exceptions import (
    AccountNotFound,
    AccountSuspended,
    AlreadyClaimed,
    ClaimExpired,
    ClaimLinkUnknown,
    InvalidInput,
    NotFound,
    TokenRevoked,
)
from accounts.models import ApiToken, AuditEvent, ClaimLink, CloudAccount, KVEntry
from accounts.selectors import inventory
from accounts.services.claims import (
    ClaimStatus,
    claim_status,
    confirm_claim,
    create_owner_token,
    decline_claim,
    revoke_owner_token,
)
from accounts.services.tokens import authenticate_token
from tests.claim_builders import full_deploy

pytestmark = pytest.mark.django_db


def confirm(made, user, now, **kwargs):
    return confirm_claim(
        key=made.claim_key, account_id=made.account.pk, user=user, now=now, **kwargs
    )


def test_a_claim_transfers_the_account_and_uses_the_link(provision, user, now):
    made = provision()

    result = confirm(made, user, now, origin_hash="f" * 64)

    account = CloudAccount.objects.get(pk=made.account.pk)
    assert account.state == CloudAccount.State.CLAIMED
    assert (account.owner, account.claimed_at) == (user, now)
    link = ClaimLink.objects.get(account=account)
    assert (link.state, link.used_at, link.used_by) == ("used", now, user)
    assert result.agent_token is None
    event = AuditEvent.objects.get(account=account, kind=AuditEvent.Kind.CLAIMED)
    assert (event.actor, event.origin_hash) == (user, "f" * 64)


def test_after_a_claim_the_agent_is_told_to_log_out(client, provision, user, now):
    made = provision()
    confirm(made, user, now)

    token = ApiToken.objects.get(pk=made.api_token_id)
    assert token.revoked_because == ApiToken.RevokedBecause.CLAIMED
    with pytest.raises(TokenRevoked, match=r"claimed.*wrangler logout"):
        authenticate_token(
            raw_token=made.api_token, account_id=made.account.pk, now=now
        )
    response = client.get(
        "/client/v4/accounts", HTTP_AUTHORIZATION=f"Bearer {made.api_token}"
    )
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    body = response.json()
    assert body["success"] is False
    assert "wrangler logout" in body["errors"][0]["message"]
    assert "claimed" in body["errors"][0]["message"]


def test_after_a_claim_the_status_endpoint_says_claimed(client, provision, user, now):
    made = provision()
    confirm(made, user, now)

    response = client.get(
        reverse("api-provisioning-status", args=[made.account.pk]),
        HTTP_AUTHORIZATION=f"Bearer {made.api_token}",
    )

    assert response.status_code == HTTPStatus.OK
    result = response.json()["result"]
    assert result["state"] == "claimed"
    assert result["claim"]["claimedAt"] is not None


def test_an_agent_grace_keeps_the_old_token_until_then_and_issues_a_new_one(
    provision, user, now
):
    made = provision()

    result = confirm(made, user, now, agent_grace=timedelta(hours=4))

    until = now + timedelta(hours=4)
    assert result.agent_until == until
    assert result.agent_token.token.kind == ApiToken.Kind.AGENT_GRACE
    assert result.agent_token.token.expires_at == until
    for raw in (made.api_token, result.agent_token.secret):
        assert authenticate_token(
            raw_token=raw, account_id=made.account.pk, now=until - timedelta(seconds=1)
        )
        with pytest.raises(TokenRevoked, match="expired"):
            authenticate_token(raw_token=raw, account_id=made.account.pk, now=until)


@pytest.mark.parametrize("hours", [0, 25, -1])
def test_an_agent_grace_is_between_nothing_and_a_day(provision, user, now, hours):
    made = provision()

    with pytest.raises(InvalidInput):
        confirm(made, user, now, agent_grace=timedelta(hours=hours))

    assert CloudAccount.objects.get(pk=made.account.pk).owner is None


def test_a_claim_is_refused_after_the_deadline(provision, user, now):
    late = provision()
    cut_short = provision()
    CloudAccount.objects.filter(pk=cut_short.account.pk).update(
        claim_expires_at=now - timedelta(seconds=1)
    )

    for made, at in [(late, now + timedelta(minutes=60)), (cut_short, now)]:
        with pytest.raises(ClaimExpired):
            confirm(made, user, at)
        assert CloudAccount.objects.get(pk=made.account.pk).owner is None
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.CLAIMED).exists()


def test_a_claim_is_refused_for_a_wrong_key_or_another_account(provision, user, now):
    made = provision()
    other = provision()

    with pytest.raises(ClaimLinkUnknown):
        confirm_claim(key="nope", account_id=made.account.pk, user=user, now=now)
    with pytest.raises(ClaimLinkUnknown):
        confirm_claim(
            key=made.claim_key, account_id=other.account.pk, user=user, now=now
        )


def test_a_second_claim_is_refused(provision, user, django_user_model, now):
    made = provision()
    confirm(made, user, now)

    with pytest.raises(AlreadyClaimed):
        confirm(made, django_user_model.objects.create_user("bob"), now)
    with pytest.raises(AlreadyClaimed):
        confirm(made, user, now)


def test_a_suspended_account_cannot_be_claimed_or_declined(provision, user, now):
    made = provision()
    CloudAccount.objects.filter(pk=made.account.pk).update(
        state=CloudAccount.State.SUSPENDED
    )

    with pytest.raises(AccountSuspended):
        confirm(made, user, now)
    with pytest.raises(AccountSuspended):
        decline_claim(key=made.claim_key, account_id=made.account.pk, now=now)


def test_declining_deletes_everything_now_and_refuses_every_token(provision, now):
    made = provision()
    full_deploy(made.account)

    decline_claim(key=made.claim_key, account_id=made.account.pk, now=now)

    account = CloudAccount.objects.get(pk=made.account.pk)
    assert account.state == CloudAccount.State.EXPIRED
    assert account.purged_at == now
    assert inventory(account=account).resource_count == 0
    assert not KVEntry.objects.exists()
    assert account.claim_expires_at == account.declined_at == now
    assert ClaimLink.objects.get(account=account).state == ClaimLink.State.REVOKED
    with pytest.raises(TokenRevoked, match="expired"):
        authenticate_token(
            raw_token=made.api_token, account_id=made.account.pk, now=now
        )
    assert AuditEvent.objects.filter(
        account=account, kind=AuditEvent.Kind.DECLINED
    ).exists()
    with pytest.raises(ClaimExpired):
        decline_claim(key=made.claim_key, account_id=made.account.pk, now=now)


def test_the_status_rules_in_order(provision, user, django_user_model, now):
    made = provision()
    link = ClaimLink.objects.select_related("account").get(account=made.account)
    account = link.account
    bob = django_user_model.objects.create_user("bob")

    def status() -> ClaimStatus:
        return claim_status(link=link, user=user, now=now)

    assert claim_status(link=None, user=user, now=now) is ClaimStatus.UNKNOWN
    assert status() is ClaimStatus.OPEN
    link.state = ClaimLink.State.REVOKED
    assert status() is ClaimStatus.UNKNOWN
    account.claim_expires_at = now
    assert status() is ClaimStatus.EXPIRED
    account.declined_at = now
    assert status() is ClaimStatus.DELETED
    account.state, account.owner = CloudAccount.State.CLAIMED, user
    assert status() is ClaimStatus.YOURS
    account.owner = bob
    assert status() is ClaimStatus.TAKEN
    account.state = CloudAccount.State.SUSPENDED
    assert status() is ClaimStatus.SUSPENDED


# --- Owner tokens -----------------------------------------------------------------


def test_an_owner_creates_a_token_that_opens_only_their_account(provision, user, now):
    made = provision()
    other = provision()
    confirm(made, user, now)

    issued = create_owner_token(
        account_id=made.account.pk, user=user, now=now, name="laptop"
    )

    assert issued.token.kind == ApiToken.Kind.OWNER
    assert authenticate_token(
        raw_token=issued.secret, account_id=made.account.pk, now=now
    ).pk == (issued.token.pk)
    with pytest.raises(AccountNotFound):
        authenticate_token(
            raw_token=issued.secret, account_id=other.account.pk, now=now
        )
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.TOKEN_CREATED).count() == 1


def test_only_an_owner_makes_or_revokes_tokens(provision, user, django_user_model, now):
    made = provision()
    bob = django_user_model.objects.create_user("bob")

    with pytest.raises(NotFound):  # not claimed yet
        create_owner_token(account_id=made.account.pk, user=user, now=now, name="x")
    confirm(made, user, now)
    with pytest.raises(NotFound):
        create_owner_token(account_id=made.account.pk, user=bob, now=now, name="x")
    issued = create_owner_token(
        account_id=made.account.pk, user=user, now=now, name="x"
    )
    with pytest.raises(NotFound):
        revoke_owner_token(
            account_id=made.account.pk, token_id=issued.token.pk, user=bob, now=now
        )


def test_revoking_a_token_is_final_and_idempotent(provision, user, now):
    made = provision()
    result = confirm(made, user, now, agent_grace=timedelta(hours=1))
    grace = result.agent_token

    for _ in range(2):
        revoke_owner_token(
            account_id=made.account.pk, token_id=grace.token.pk, user=user, now=now
        )

    with pytest.raises(TokenRevoked, match="revoked by the account owner"):
        authenticate_token(raw_token=grace.secret, account_id=made.account.pk, now=now)
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.TOKEN_REVOKED).count() == 1
