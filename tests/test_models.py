from datetime import timedelta
from pathlib import Path

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


def test_the_deadline_follows_the_configured_window(provision, now, settings):
    settings.CLAIMPORTAL_CLAIM_WINDOW = timedelta(minutes=15)
    made = provision()
    assert made.account.claim_expires_at == now + timedelta(minutes=15)
    link = ClaimLink.objects.select_related("account").get(account=made.account)
    assert link.deadline == made.account.claim_expires_at


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


STATES = [
    ("pending", ""),
    ("claimed", ""),
    ("expired", ""),
    ("suspended", "pending"),
    ("suspended", "claimed"),
]


@pytest.mark.parametrize("purged", [False, True])
def test_each_rule_means_the_same_on_a_row_and_in_a_query(provision, now, purged):
    """live, ended and due: the predicate and the QuerySet method agree on every
    state, on both sides of the deadline."""
    made = []
    for state, before in STATES:
        for age in (timedelta(0), timedelta(hours=2)):
            account = provision(now=now - age).account
            CloudAccount.objects.filter(pk=account.pk).update(
                state=state,
                state_before_suspension=before,
                purged_at=now if purged else None,
            )
            made.append(CloudAccount.objects.get(pk=account.pk))
    for rule in ("live", "ended", "due"):
        in_query = set(getattr(CloudAccount.objects, rule)(now).values_list("pk"))
        on_rows = {(a.pk,) for a in made if getattr(a, f"is_{rule}")(now)}
        assert in_query == on_rows, rule
    live = {a.pk for a in made if a.is_live(now)}
    assert live and live.isdisjoint(a.pk for a in made if a.is_due(now))


def test_no_service_writes_the_deadline_rule_again():
    """The deadline comparisons live in accounts/models.py; elsewhere the
    predicates and QuerySet methods are used."""
    app = Path(__file__).resolve().parent.parent / "accounts"
    copies = [
        f"{path.relative_to(app)}: {line.strip()}"
        for path in app.rglob("*.py")
        if path.name != "models.py" and "migrations" not in path.parts
        for line in path.read_text().splitlines()
        if "is_past_deadline(" in line
        or ("CLAIMED or" in line and "is_claimable(" in line)
        or "Q(claim_expires_at__lte=now)" in line
    ]
    assert copies == []
