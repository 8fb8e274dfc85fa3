"""Migration 0007: rows made before it keep their decisions after it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.migrating import migrate, migrate_to_latest

BEFORE = [("accounts", "0006_d1_query_stats")]
AFTER = [("accounts", "0007_claim_state_on_row")]


@pytest.fixture
def at_0006(transactional_db):
    yield migrate(BEFORE)
    migrate_to_latest()


def test_declines_and_the_earliest_deadline_move_onto_the_row(at_0006):
    now = timezone.now()
    account_model = at_0006.get_model("accounts", "CloudAccount")
    link_model = at_0006.get_model("accounts", "ClaimLink")
    audit_model = at_0006.get_model("accounts", "AuditEvent")

    def account(name, state, claim_ends, ends, link_ends=None):
        made = account_model.objects.create(
            name=name,
            subdomain=name,
            state=state,
            claim_expires_at=claim_ends,
            expires_at=ends,
        )
        link_model.objects.create(
            account=made, key_hash=name, expires_at=link_ends or claim_ends
        )
        return made

    declined = account("declined", "expired", now, now)
    audit_model.objects.create(
        account=declined, account_ref=declined.pk, kind="declined", created_at=now
    )
    expired = account("expired", "expired", now, now)
    audit_model.objects.create(
        account=expired, account_ref=expired.pk, kind="expired", created_at=now
    )
    short_lived = account(
        "short", "pending", now + timedelta(hours=1), now + timedelta(minutes=30)
    )
    short_link = account(
        "link",
        "pending",
        now + timedelta(hours=1),
        now + timedelta(hours=1),
        link_ends=now + timedelta(minutes=10),
    )

    apps = migrate(AFTER)
    rows = {
        row.name: row
        for row in apps.get_model("accounts", "CloudAccount").objects.all()
    }

    assert rows["declined"].declined_at == now
    assert rows["expired"].declined_at is None
    assert rows[short_lived.name].claim_expires_at == now + timedelta(minutes=30)
    assert rows[short_link.name].claim_expires_at == now + timedelta(minutes=10)

    # Going back gives each row its copies again, all equal to the one deadline.
    apps = migrate(BEFORE)
    back = apps.get_model("accounts", "CloudAccount").objects.get(name="short")
    assert back.expires_at == back.claim_expires_at == now + timedelta(minutes=30)
    link = apps.get_model("accounts", "ClaimLink").objects.get(account=back)
    assert link.expires_at == back.claim_expires_at
