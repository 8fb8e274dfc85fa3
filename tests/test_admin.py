"""The moderator's console: the account list and its cost, filters, search,
the account page, every action through the admin, events, the blocklist,
reports and the operations summary."""

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import (
    AbuseReport,
    ApiToken,
    AuditEvent,
    BlockedOrigin,
    CloudAccount,
    Event,
    KVNamespace,
    WorkerScript,
)
from accounts.services import purge
from accounts.services.provisioning import (
    EventDisabled,
    EventExhausted,
    EventNotStarted,
    OriginBlocked,
    admit_client,
    client_origin,
    take_event_seat,
)
from tests.every_resource import stock_account

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:accounts_cloudaccount_changelist"


@pytest.fixture
def staff(django_user_model, client):
    admin = django_user_model.objects.create_superuser(
        username="grace", email="grace@example.com", password="x"
    )
    client.force_login(admin)
    return admin


def changelist(client, **params):
    return client.get(reverse(CHANGELIST), params)


def listed(page) -> set[str]:
    return {account.pk for account in page.context["cl"].result_list}


def act(client, action, *accounts, **data):
    """Choose an action for accounts in the changelist, as the dropdown does."""
    return client.post(
        reverse(CHANGELIST),
        {"action": action, "index": 0, "_selected_action": [a.pk for a in accounts]},
        **data,
    )


def confirm(client, action, *accounts, **fields):
    """The second step of an action that asks first."""
    return client.post(
        reverse(CHANGELIST),
        {
            "action": action,
            "apply": "yes",
            "_selected_action": [a.pk for a in accounts],
            **fields,
        },
    )


def state_of(account) -> str:
    return CloudAccount.objects.get(pk=account.pk).state


def audited(account, kind, actor) -> bool:
    return AuditEvent.objects.filter(account=account, kind=kind, actor=actor).exists()


# --- Getting in -------------------------------------------------------------------


def test_signing_in_to_the_admin_goes_through_allauth(client, django_user_model):
    page = client.get(reverse("admin:index"))
    assert page.status_code == HTTPStatus.FOUND
    login = client.get(page["Location"])
    assert login.status_code == HTTPStatus.FOUND
    assert login["Location"].startswith(reverse("account_login"))
    assert "next=%2Fadmin%2F" in login["Location"]

    someone = django_user_model.objects.create_user(username="x", password="x")
    client.force_login(someone)
    assert client.get(reverse("admin:login")).status_code == HTTPStatus.FORBIDDEN


# --- The list ---------------------------------------------------------------------


def _bulk_accounts(count: int, now) -> None:
    accounts = CloudAccount.objects.bulk_create(
        CloudAccount(
            name=f"bulk-{count}-{i}",
            subdomain=f"bulk-{count}-{i}",
            claim_expires_at=now + timedelta(minutes=30),
            origin_hash=f"{i:064x}",
        )
        for i in range(count)
    )
    WorkerScript.objects.bulk_create(
        WorkerScript(account=a, name=f"w{n}") for a in accounts for n in range(2)
    )
    KVNamespace.objects.bulk_create(
        KVNamespace(account=a, title="kv") for a in accounts
    )
    AbuseReport.objects.bulk_create(
        AbuseReport(account=a, reason="bad") for a in accounts[::3]
    )


def test_the_list_costs_the_same_queries_for_10_or_500_accounts(staff, client, now):
    Event.objects.create(
        code="e", starts_at=now, ends_at=now, claim_window=timedelta(hours=1), quota=1
    )
    counts = {}
    for count in (10, 500):
        CloudAccount.objects.all().delete()
        _bulk_accounts(count, now)
        with CaptureQueriesContext(connection) as queries:
            page = changelist(client)
        assert page.status_code == HTTPStatus.OK
        assert len(page.context["cl"].result_list) == min(count, 100)
        counts[count] = len(queries)
    assert counts[10] == counts[500]
    row = page.content.decode()
    assert "w0, w1" in row and "2 Worker · 1 KV" in row


def test_the_list_shows_what_a_moderator_needs(staff, client, provision, now, user):
    made = provision(now=now)
    stock_account(made.account, now=now)
    AbuseReport.objects.create(account=made.account, reason="phishing")

    page = changelist(client).content.decode()

    for shown in (
        made.account.name,
        made.account.subdomain,
        "hello",  # the Worker
        "1 Worker · 1 KV · 1 D1 · 1 DO class · 1 queue · 1 Hyperdrive · 1 cert",
        "(in 59",  # time left
        made.account.origin_hash[:12],
        'alt="True"',  # open reports
    ):
        assert shown in page


def test_filters(staff, client, provision, now):
    soon = provision(now=now - timedelta(minutes=30)).account
    later = provision(now=now + timedelta(minutes=5)).account
    overdue = provision(now=now - timedelta(hours=2)).account
    AbuseReport.objects.create(account=later, reason="bad")
    AbuseReport.objects.create(account=soon, reason="old", handled_at=now)

    assert listed(changelist(client, expiring="hour")) == {soon.pk}
    assert listed(changelist(client, expiring="overdue")) == {overdue.pk}
    assert listed(changelist(client, reports="open")) == {later.pk}
    assert listed(changelist(client, reports="none")) == {soon.pk, overdue.pk}
    assert len(listed(changelist(client, state__exact="pending"))) == 3


def test_search_by_token_worker_owner_and_id(staff, client, provision, now, user):
    made, other = provision(now=now), provision(now=now)
    WorkerScript.objects.create(account=made.account, name="phishy-site")
    CloudAccount.objects.filter(pk=other.account.pk).update(owner=user)

    for term, found in (
        (made.api_token, made.account.pk),  # a pasted token: only its prefix counts
        (made.api_token[:12], made.account.pk),
        ("phishy", made.account.pk),
        ("ada@example.com", other.account.pk),
        (other.account.pk, other.account.pk),
    ):
        assert listed(changelist(client, q=term)) == {found}, term


def test_the_account_page_shows_everything_and_no_secret(staff, client, provision, now):
    made = provision(now=now)
    stock_account(made.account, now=now)
    AbuseReport.objects.create(account=made.account, reason="it phishes")

    page = client.get(
        reverse("admin:accounts_cloudaccount_change", args=[made.account.pk])
    )

    assert page.status_code == HTTPStatus.OK
    html = page.content.decode()
    for shown in (
        "hello",
        "hello-CACHE",
        "notes",
        "Counter",
        "jobs",
        "db.example.com:5432",
        made.api_token[:12],
        "it phishes",
        "Provisioned",
        "Suspend",
        "Purge now",
    ):
        assert shown in html, shown
    token = ApiToken.objects.get(account=made.account)
    for secret in (
        made.api_token,
        token.secret_hash,
        made.claim_key,
        made.account.claim_links.get().key_hash,
        "s3cret",  # the Worker secret
        '"pw"',  # the Hyperdrive password
    ):
        assert secret not in html
    assert 'name="_save"' not in html


# --- Actions, from the list and from the account's page --------------------------


def test_suspend_and_unsuspend(staff, client, provision, now):
    one, two = provision(now=now).account, provision(now=now).account

    page = act(client, "suspend", one, two, follow=True)

    assert "Suspended:" in page.content.decode()
    assert state_of(one) == state_of(two) == "suspended"
    assert audited(one, AuditEvent.Kind.SUSPENDED, staff)
    act(client, "unsuspend", one)
    assert state_of(one) == "pending"
    assert audited(one, AuditEvent.Kind.UNSUSPENDED, staff)


def test_a_refused_action_says_why_per_account(staff, client, provision, now):
    fine = provision(now=now).account
    expired = provision(now=now).account
    CloudAccount.objects.filter(pk=expired.pk).update(state="expired")

    page = act(client, "suspend", fine, expired, follow=True)

    said = [str(message) for message in page.context["messages"]]
    assert said == [
        f"{expired.name}: The account is expired.",
        f"Suspended: {fine.name}.",
    ]
    assert not AuditEvent.objects.filter(account=expired, kind="suspended").exists()


def test_the_buttons_on_the_account_page(staff, client, provision, now):
    account = provision(now=now).account
    url = reverse("admin:accounts_act", args=[account.pk, "suspend"])

    assert client.get(url).status_code == HTTPStatus.METHOD_NOT_ALLOWED
    done = client.post(url)

    assert done.status_code == HTTPStatus.FOUND
    assert done["Location"] == reverse(
        "admin:accounts_cloudaccount_change", args=[account.pk]
    )
    assert state_of(account) == "suspended"
    page = client.get(done["Location"]).content.decode()
    assert "Unsuspend" in page and 'value="Suspend"' not in page
    bad = reverse("admin:accounts_act", args=[account.pk, "delete_selected"])
    assert client.post(bad).status_code == HTTPStatus.FORBIDDEN


def test_extend_asks_how_long_then_extends(staff, client, provision, now, settings):
    settings.CLAIMPORTAL_MAX_EXTENSION = timedelta(hours=24)
    account = provision(now=now).account

    asked = act(client, "extend_claim_window", account)
    assert asked.status_code == HTTPStatus.OK
    assert 'name="minutes"' in asked.content.decode()
    too_long = confirm(client, "extend_claim_window", account, minutes=24 * 60 + 1)
    assert too_long.status_code == HTTPStatus.OK  # shown again with the error
    confirm(client, "extend_claim_window", account, minutes=90)

    after = CloudAccount.objects.get(pk=account.pk)
    assert after.claim_expires_at == account.claim_expires_at + timedelta(minutes=90)
    assert audited(account, AuditEvent.Kind.EXTENDED, staff)


def test_expire_now_and_purge_now(staff, client, provision, now):
    doomed, purged = provision(now=now), provision(now=now)
    stock_account(purged.account, now=now)

    act(client, "expire_now", doomed.account)
    asked = act(client, "purge_now", purged.account)
    assert "Yes, delete everything" in asked.content.decode()
    assert state_of(purged.account) == "pending"  # asking changes nothing
    confirm(client, "purge_now", purged.account)

    assert state_of(doomed.account) == "expired"
    assert audited(doomed.account, AuditEvent.Kind.EXPIRED, staff)
    account = CloudAccount.objects.get(pk=purged.account.pk)
    assert account.purged_at is not None and not account.workers.exists()
    assert audited(account, AuditEvent.Kind.PURGED, staff)


def test_revoke_tokens(staff, client, provision, now):
    made = provision(now=now)
    act(client, "revoke_tokens", made.account)
    token = ApiToken.objects.get(account=made.account)
    assert token.revoked_because == ApiToken.RevokedBecause.MODERATOR
    assert audited(made.account, AuditEvent.Kind.TOKEN_REVOKED, staff)


def test_block_origin_then_provisioning_from_it_is_refused(
    staff, client, provision, now
):
    origin = client_origin("198.51.100.77")
    account = provision(now=now, origin_hash=origin.origin_hash).account

    act(client, "block_origin", account)
    confirm(client, "block_origin", account, reason="phishing kit", days=7)

    blocked = BlockedOrigin.objects.get()
    assert (blocked.origin_hash, blocked.reason) == (origin.origin_hash, "phishing kit")
    assert blocked.expires_at > timezone.now() + timedelta(days=6)
    assert audited(account, AuditEvent.Kind.ORIGIN_BLOCKED, staff)
    with pytest.raises(OriginBlocked):
        admit_client(action="admin-test", origin=origin, now=now)


# --- Events, blocklist, reports ---------------------------------------------------


def test_an_event_made_in_admin_sets_what_provisioning_allows(staff, client, now):
    add = reverse("admin:accounts_event_add")
    form = {
        "code": "pycon-2026",
        "name": "PyCon",
        "starts_at_0": (now + timedelta(days=1)).strftime("%Y-%m-%d"),
        "starts_at_1": "09:00:00",
        "ends_at_0": (now + timedelta(days=3)).strftime("%Y-%m-%d"),
        "ends_at_1": "18:00:00",
        "claim_window": "03:00:00",
        "quota": "1",
    }
    bad = client.post(add, {**form, "ends_at_0": form["starts_at_0"], "code": "a b"})
    assert bad.status_code == HTTPStatus.OK and not Event.objects.exists()
    assert client.post(add, form).status_code == HTTPStatus.FOUND
    event = Event.objects.get()
    assert event.claim_window == timedelta(hours=3)

    with pytest.raises(EventNotStarted):
        take_event_seat(code="pycon-2026", now=now)
    during = event.starts_at + timedelta(hours=1)
    take_event_seat(code="pycon-2026", now=during)
    with pytest.raises(EventExhausted):
        take_event_seat(code="pycon-2026", now=during)
    listing = client.get(reverse("admin:accounts_event_changelist")).content.decode()
    assert "?event__id__exact=" in listing

    client.post(
        reverse("admin:accounts_event_changelist"),
        {"action": "disable", "index": 0, "_selected_action": [event.pk]},
    )
    Event.objects.filter(pk=event.pk).update(quota=5)
    with pytest.raises(EventDisabled):
        take_event_seat(code="pycon-2026", now=during)


def test_a_network_blocked_in_admin_cannot_provision(staff, client, now):
    add = reverse("admin:accounts_blockedorigin_add")
    bad = client.post(add, {"network": "not-a-net", "reason": "x"})
    assert bad.status_code == HTTPStatus.OK
    assert client.post(add, {"reason": "nothing"}).status_code == HTTPStatus.OK
    assert not BlockedOrigin.objects.exists()

    assert client.post(
        add, {"network": "192.0.2.9/24", "reason": "abuse"}
    ).status_code == (HTTPStatus.FOUND)

    assert BlockedOrigin.objects.get().network == "192.0.2.0/24"
    with pytest.raises(OriginBlocked):
        admit_client(action="net-test", origin=client_origin("192.0.2.200"), now=now)


def test_reports_link_to_their_account_and_are_marked_handled(staff, client, provision):
    account = provision().account
    report = AbuseReport.objects.create(account=account, reason="malware download")
    listing = reverse("admin:accounts_abusereport_changelist")

    page = client.get(listing, {"status": "open"}).content.decode()
    assert "malware download" in page
    assert reverse("admin:accounts_cloudaccount_change", args=[account.pk]) in page

    client.post(
        listing, {"action": "mark_handled", "index": 0, "_selected_action": [report.pk]}
    )
    report.refresh_from_db()
    assert (report.handled_by, report.handled_at is not None) == (staff, True)
    assert listed_reports(client.get(listing, {"status": "open"})) == set()


def listed_reports(page) -> set[int]:
    return {report.pk for report in page.context["cl"].result_list}


def test_the_front_page_shows_the_operations_summary(staff, client, provision, now):
    provision(now=now)
    provision(now=now - timedelta(hours=2))
    purge.purge_expired_accounts(now=now, batch_size=10)
    provision(now=now - timedelta(hours=2))  # the backlog

    page = client.get(reverse("admin:index")).content.decode()

    assert "Operations today" in page
    assert "Waiting for a claim now" in page
    assert "1 account," in page  # the last purge run
    assert "?expiring=overdue" in page
    summary = page[page.index("Purge backlog") :]
    assert ">1</a> past deadline" in summary
