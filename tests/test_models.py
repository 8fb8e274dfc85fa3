from datetime import timedelta

import pytest

from accounts import tokens
from accounts.models import ApiToken, AuditEvent, ClaimLink, CloudAccount

pytestmark = pytest.mark.django_db


def test_a_new_account_is_claimable_until_its_claim_deadline(provision, now):
    account = provision().account
    assert account.state == CloudAccount.State.PENDING
    assert account.is_claimable(now)
    assert account.is_claimable(account.claim_expires_at - timedelta(seconds=1))
    assert not account.is_claimable(account.claim_expires_at)
    assert account.is_past_deadline(account.claim_expires_at + timedelta(seconds=1))


def test_a_claimed_or_suspended_account_is_not_claimable(provision, now):
    account = provision().account
    for state in (CloudAccount.State.CLAIMED, CloudAccount.State.SUSPENDED):
        account.state = state
        assert not account.is_claimable(now)


def test_past_deadline_selects_only_pending_accounts_whose_time_ran_out(provision, now):
    late = provision(now=now - timedelta(hours=2)).account
    fresh = provision().account
    claimed_late = provision(now=now - timedelta(hours=2)).account
    CloudAccount.objects.filter(pk=claimed_late.pk).update(
        state=CloudAccount.State.CLAIMED
    )
    assert list(CloudAccount.objects.past_deadline(now)) == [late]
    assert fresh not in CloudAccount.objects.past_deadline(now)


def test_deadlines_follow_the_configured_window(provision, now, settings):
    settings.CLAIMPORTAL_CLAIM_WINDOW = timedelta(minutes=15)
    settings.CLAIMPORTAL_ACCOUNT_LIFETIME = timedelta(minutes=60)
    account = provision().account
    assert account.claim_expires_at == now + timedelta(minutes=15)
    assert account.expires_at == now + timedelta(minutes=60)


def test_ids_and_subdomains_look_like_cloudflares(provision):
    account = provision().account
    assert len(account.id) == 32
    int(account.id, 16)
    assert account.subdomain.startswith("preview-")


def test_token_usability(provision, now):
    token = ApiToken.objects.get(account=provision().account)
    assert token.is_usable(now)
    token.expires_at = now
    assert not token.is_usable(now)
    token.expires_at = None
    token.revoked_at = now
    assert not token.is_usable(now)


def test_deleting_an_account_deletes_its_tokens_and_links_but_keeps_its_audit(
    provision,
):
    account = provision().account
    account_id = account.pk
    assert ApiToken.objects.filter(account_id=account_id).count() == 1
    assert ClaimLink.objects.filter(account_id=account_id).count() == 1
    account.delete()
    assert not ApiToken.objects.filter(account_id=account_id).exists()
    assert not ClaimLink.objects.filter(account_id=account_id).exists()
    audit = AuditEvent.objects.get(account_ref=account_id)
    assert audit.account is None
    assert audit.kind == AuditEvent.Kind.PROVISIONED


def test_claim_link_usable_only_while_active_and_in_time(provision, now):
    link = ClaimLink.objects.get(account=provision().account)
    assert link.is_usable(now)
    assert not link.is_usable(link.expires_at)
    link.state = ClaimLink.State.USED
    assert not link.is_usable(now)


def test_every_secret_is_random_and_only_its_hash_is_stored(provision):
    first, second = provision(), provision()
    assert first.api_token != second.api_token
    assert first.claim_key != second.claim_key
    token = ApiToken.objects.get(pk=first.api_token_id)
    assert token.secret_hash == tokens.hash_secret(first.api_token)
    assert first.api_token not in token.secret_hash
    assert token.prefix == first.api_token[: tokens.VISIBLE_PREFIX_LENGTH]
    link = ClaimLink.objects.get(account=first.account)
    assert link.key_hash == tokens.hash_secret(first.claim_key)
    stored = [
        str(value)
        for model in (ApiToken, ClaimLink, CloudAccount, AuditEvent)
        for row in model.objects.values()
        for value in row.values()
    ]
    assert not any(first.api_token in v or first.claim_key in v for v in stored)
