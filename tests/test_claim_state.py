"""A claim's state lives on its account's row: one deadline, one table from a
status to its pages, and an audit trail that records but never decides."""

import re
from datetime import timedelta
from http import HTTPStatus
from pathlib import Path

import pytest
from django.db import models
from django.urls import reverse

from accounts.edge import pages
from accounts.models import AuditEvent, ClaimLink, CloudAccount
from accounts.services import moderation
from accounts.services.claims import (
    CLAIM_PAGES,
    ClaimStatus,
    account_claim_status,
    claim_page,
    confirm_claim,
    decline_claim,
)
from accounts.services.previews.state import banner_html, desired_previews
from tests.claim_builders import full_deploy

pytestmark = pytest.mark.django_db

REVIEW = reverse("accounts:claim_review")
CHANGELIST = "admin:accounts_cloudaccount_changelist"


@pytest.fixture
def moderator(django_user_model):
    return django_user_model.objects.create_user(
        username="mod", email="mod@example.com", password="x", is_staff=True
    )


def review(client, key: str):
    client.get(reverse("accounts:claim", args=[key]))
    return client.get(REVIEW)


def agent_state(client, made) -> dict:
    response = client.get(
        f"/client/v4/provisioning/previews/{made.account.pk}",
        HTTP_AUTHORIZATION=f"Bearer {made.api_token}",
    )
    assert response.status_code == HTTPStatus.OK, response.content
    return response.json()["result"]


def shown_everywhere(client, made, now) -> tuple[str, str | None, str]:
    """What the claim page, the edge and the API say about ``made`` now."""
    page = review(client, made.claim_key)
    gone = desired_previews(now=now).gone.get(made.account.subdomain)
    return (
        page.templates[0].name,
        gone[0] if gone else None,
        agent_state(client, made)["state"],
    )


# --- The audit trail records; it never decides ------------------------------------


def test_deleting_the_trail_changes_no_decision(client, provision, now, moderator):
    declined, expired = provision(), provision()
    full_deploy(declined.account)
    decline_claim(key=declined.claim_key, account_id=declined.account.pk, now=now)
    moderation.expire_account_now(
        account_id=expired.account.pk, actor=moderator, now=now
    )
    later = now + timedelta(seconds=1)
    before = [shown_everywhere(client, made, later) for made in (declined, expired)]

    AuditEvent.objects.all().delete()

    after = [shown_everywhere(client, made, later) for made in (declined, expired)]
    assert after == before
    assert before[0] == ("accounts/claim_deleted.html", "deleted", "expired")
    assert before[1] == ("accounts/claim_expired.html", "expired", "expired")


def test_a_forged_decline_in_the_trail_changes_no_decision(
    client, provision, now, moderator
):
    expired = provision()
    moderation.expire_account_now(
        account_id=expired.account.pk, actor=moderator, now=now
    )
    later = now + timedelta(seconds=1)
    before = shown_everywhere(client, expired, later)

    AuditEvent.objects.create(
        account=expired.account,
        account_ref=expired.account.pk,
        kind=AuditEvent.Kind.DECLINED,
    )
    AuditEvent.objects.filter(kind=AuditEvent.Kind.EXPIRED).update(
        kind=AuditEvent.Kind.CLAIMED
    )

    assert shown_everywhere(client, expired, later) == before
    assert before[:2] == ("accounts/claim_expired.html", "expired")


def test_no_module_reads_the_trail_to_decide():
    """Only the admin shows the trail (through the account's inline); code
    elsewhere writes it and never queries it."""
    app = Path(__file__).resolve().parent.parent / "accounts"
    writes = re.compile(r"AuditEvent\.objects\.(create|bulk_create)\(")
    reads = [
        f"{path.relative_to(app)}: {line.strip()}"
        for path in app.rglob("*.py")
        if "migrations" not in path.parts
        for line in path.read_text().splitlines()
        if "AuditEvent.objects." in line and not writes.search(line)
    ]
    assert reads == []


# --- One deadline ------------------------------------------------------------------


def test_one_deadline_is_stored():
    def deadlines(model: type[models.Model]) -> list[str]:
        return [
            field.name
            for field in model._meta.get_fields()
            if isinstance(field, models.DateTimeField) and "expires" in field.name
        ]

    assert deadlines(CloudAccount) == ["claim_expires_at"]
    assert deadlines(ClaimLink) == []


def test_the_api_the_banner_and_the_link_say_the_moment_the_account_ends(
    client, provision, now, settings
):
    settings.CLAIMPORTAL_CLAIM_WINDOW = timedelta(minutes=15)
    made = provision()
    deadline = made.account.claim_expires_at
    assert deadline == now + timedelta(minutes=15)

    status = agent_state(client, made)
    link = ClaimLink.objects.select_related("account").get(account=made.account)

    assert status["expiresAt"] == status["claim"]["expiresAt"]
    assert status["expiresAt"].startswith(deadline.strftime("%Y-%m-%dT%H:%M:%S"))
    assert deadline.strftime("%H:%M UTC") in banner_html(account=made.account)
    assert link.deadline == deadline
    # And it is the moment the account stops being live.
    assert made.account.is_live(deadline - timedelta(seconds=1))
    assert not made.account.is_live(deadline)


def test_extending_moves_what_every_place_shows(client, provision, now, moderator):
    made = provision()
    moderation.extend_claim_window(
        account_id=made.account.pk, actor=moderator, now=now, by=timedelta(hours=1)
    )
    account = CloudAccount.objects.get(pk=made.account.pk)
    link = ClaimLink.objects.select_related("account").get(account=account)
    later = account.claim_expires_at

    assert later == made.account.claim_expires_at + timedelta(hours=1)
    assert link.deadline == later
    assert later.strftime("%H:%M UTC") in banner_html(account=account)
    assert agent_state(client, made)["expiresAt"].startswith(
        later.strftime("%Y-%m-%dT%H:%M:%S")
    )


# --- One table from a status to its pages ------------------------------------------


def test_every_status_has_one_row_and_every_edge_page_exists():
    assert set(CLAIM_PAGES) == set(ClaimStatus)
    for status in ClaimStatus:
        page = claim_page(status)
        assert (page.refusal is None) is (status is ClaimStatus.OPEN)
        if page.edge_page is not None:
            edge_status = pages.PAGES[page.edge_page][0]
            assert edge_status // 100 == page.http_status // 100 == 4, status


def _put_in(status: ClaimStatus, made, user, other, now) -> None:
    """Leave ``made``'s account and link in the state ``status`` names."""
    account = CloudAccount.objects.filter(pk=made.account.pk)
    if status is ClaimStatus.UNKNOWN:
        ClaimLink.objects.filter(account_id=made.account.pk).update(
            state=ClaimLink.State.REVOKED
        )
    elif status is ClaimStatus.EXPIRED:
        account.update(claim_expires_at=now - timedelta(seconds=1))
    elif status is ClaimStatus.DELETED:
        decline_claim(key=made.claim_key, account_id=made.account.pk, now=now)
    elif status in (ClaimStatus.YOURS, ClaimStatus.TAKEN):
        owner = user if status is ClaimStatus.YOURS else other
        account.update(state=CloudAccount.State.CLAIMED, owner=owner)
    elif status is ClaimStatus.SUSPENDED:
        account.update(
            state=CloudAccount.State.SUSPENDED,
            state_before_suspension=CloudAccount.State.PENDING,
        )


@pytest.mark.parametrize("status", [s for s in ClaimStatus])
def test_the_claim_pages_and_the_services_follow_the_table(
    client, provision, user, django_user_model, now, status
):
    made = provision()
    other = django_user_model.objects.create_user("bob", "bob@example.com")
    _put_in(status, made, user, other, now)
    page = claim_page(status)
    client.force_login(user)

    shown = review(client, made.claim_key)
    refused = client.post(REVIEW, {"account": made.account.pk})

    assert (shown.templates[0].name, shown.status_code) == (
        page.template,
        page.http_status,
    )
    if page.refusal is None:
        return
    assert refused.templates[0].name == page.template
    assert refused.status_code == page.http_status
    with pytest.raises(page.refusal):
        confirm_claim(
            key=made.claim_key, account_id=made.account.pk, user=user, now=now
        )


def test_the_admin_names_each_state_as_the_table_does(
    client, provision, now, django_user_model
):
    declined, overdue, waiting = provision(), provision(), provision()
    decline_claim(key=declined.claim_key, account_id=declined.account.pk, now=now)
    CloudAccount.objects.filter(pk=overdue.account.pk).update(
        claim_expires_at=now - timedelta(minutes=5)
    )
    client.force_login(
        django_user_model.objects.create_superuser("grace", "grace@example.com", "x")
    )
    page = client.get(reverse(CHANGELIST)).content.decode()

    for made, status in [
        (declined, ClaimStatus.DELETED),
        (overdue, ClaimStatus.EXPIRED),
        (waiting, ClaimStatus.OPEN),
    ]:
        account = CloudAccount.objects.get(pk=made.account.pk)
        assert account_claim_status(account=account, user=None, now=now) is status
        label = claim_page(status).label
        if account.purged_at:
            label += ", purged"
        row = re.search(
            rf"<tr>(?:(?!</tr>).)*{account.subdomain}(?:(?!</tr>).)*</tr>",
            page,
            re.S,
        )
        assert row is not None and label.replace("'", "&#x27;") in row.group(0)
