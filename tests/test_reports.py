"""The public abuse-report form: valid, invalid, CSRF, rate limit; and the
service behind it."""

import random
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AbuseReport, AuditEvent, CloudAccount
from accounts.services import reports
from accounts.services.provisioning import client_origin

pytestmark = pytest.mark.django_db


def fresh_address() -> str:
    """A client address of its own, so rate-limit counters in the shared cache
    never mix between tests or runs."""
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(256)}"


@pytest.fixture
def address() -> str:
    return fresh_address()


@pytest.fixture
def visitor(address) -> Client:
    return Client(REMOTE_ADDR=address)


def report_url(account) -> str:
    return reverse("accounts:report", args=[account.pk])


VALID = {"reason": "It copies my bank's sign-in page.", "contact_email": ""}


def test_the_form_names_the_deployment_and_changes_nothing(provision, visitor):
    account = provision().account
    page = visitor.get(report_url(account))
    assert page.status_code == HTTPStatus.OK
    assert account.subdomain in page.content.decode()
    assert "csrfmiddlewaretoken" in page.content.decode()
    assert not AbuseReport.objects.exists()


def test_a_valid_report_is_filed_and_flags_the_account(provision, visitor, address):
    account = provision().account

    sent = visitor.post(
        report_url(account), {**VALID, "contact_email": "me@example.com"}
    )

    assert sent.status_code == HTTPStatus.FOUND
    assert sent["Location"] == reverse("accounts:report_sent")
    assert visitor.get(sent["Location"]).status_code == HTTPStatus.OK
    report = AbuseReport.objects.get(account=account)
    assert report.reason == VALID["reason"]
    assert report.contact_email == "me@example.com"
    assert report.origin_hash == client_origin(address).origin_hash
    assert AuditEvent.objects.filter(
        account=account, kind=AuditEvent.Kind.REPORTED
    ).exists()


@pytest.mark.parametrize(
    "data",
    [
        {"reason": "bad", "contact_email": ""},
        {"reason": "", "contact_email": ""},
        {"reason": "x" * 2001, "contact_email": ""},
        {**VALID, "contact_email": "not an address"},
    ],
    ids=["too short", "empty", "too long", "bad email"],
)
def test_an_invalid_report_is_shown_again_with_its_errors(provision, visitor, data):
    account = provision().account
    page = visitor.post(report_url(account), data)
    assert page.status_code == HTTPStatus.BAD_REQUEST
    assert 'class="errorlist' in page.content.decode()
    assert not AbuseReport.objects.exists()


def test_a_post_without_the_csrf_token_is_refused(provision, address):
    account = provision().account
    strict = Client(enforce_csrf_checks=True, REMOTE_ADDR=address)
    assert strict.post(report_url(account), VALID).status_code == HTTPStatus.FORBIDDEN
    assert not AbuseReport.objects.exists()


def test_one_client_may_send_only_a_few_reports_an_hour(provision, visitor, settings):
    settings.CLAIMPORTAL_REPORTS_PER_HOUR = 2
    account = provision().account
    for _ in range(2):
        assert visitor.post(report_url(account), VALID).status_code == HTTPStatus.FOUND

    refused = visitor.post(report_url(account), VALID)

    assert refused.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert 0 < int(refused["Retry-After"]) <= 3600
    assert "Too many reports" in refused.content.decode()
    assert AbuseReport.objects.count() == 2
    other = Client(REMOTE_ADDR=fresh_address())
    assert other.post(report_url(account), VALID).status_code == HTTPStatus.FOUND


@pytest.mark.parametrize("method", ["get", "post"])
def test_unknown_and_purged_accounts_have_nothing_to_report(
    provision, visitor, now, method
):
    gone = provision(now=now).account
    CloudAccount.objects.filter(pk=gone.pk).update(state="expired", purged_at=now)
    for url in (report_url(gone), reverse("accounts:report", args=["0" * 32])):
        page = getattr(visitor, method)(url, VALID)
        assert page.status_code == HTTPStatus.NOT_FOUND
    assert visitor.get("/report/not-an-id/").status_code == HTTPStatus.NOT_FOUND
    assert not AbuseReport.objects.exists()


def test_reports_are_marked_handled_once(provision, now, user):
    account = provision().account
    origin = client_origin(fresh_address())
    first, second = (
        reports.file_abuse_report(
            account_id=account.pk,
            reason=VALID["reason"],
            contact_email="",
            origin=origin,
            now=now,
        )
        for _ in range(2)
    )
    ids = [first.pk, second.pk]

    assert reports.mark_reports_handled(report_ids=ids, actor=user, now=now) == 2
    later = now + timedelta(hours=1)
    assert reports.mark_reports_handled(report_ids=ids, actor=user, now=later) == 0
    assert set(AbuseReport.objects.values_list("handled_at", "handled_by")) == {
        (now, user.pk)
    }
