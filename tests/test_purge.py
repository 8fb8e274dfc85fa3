"""The purge service: what goes, what stays, when, and at what cost."""

import logging
from datetime import timedelta
from http import HTTPStatus
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.exceptions import Conflict, TokenRevoked
from accounts.models import (
    ApiToken,
    AuditEvent,
    ClaimLink,
    CloudAccount,
    KVEntry,
    KVNamespace,
    PurgeRun,
    WorkerScript,
)
from accounts.services import purge
from accounts.services.tokens import authenticate_token
from tests.every_resource import (
    RESOURCE_TABLES,
    resource_rows,
    stock_account,
    stored_files,
)

pytestmark = pytest.mark.django_db

NOTHING = dict.fromkeys((model.__name__ for model in RESOURCE_TABLES), 0)
ONE_EACH = {
    **dict.fromkeys(NOTHING, 1),
    "KVEntry": 3,
    "AssetBlob": 2,
}


def run(now, **kwargs):
    kwargs.setdefault("batch_size", 50)
    return purge.purge_expired_accounts(now=now, **kwargs)


def test_an_expired_account_loses_every_row_and_byte_and_keeps_a_tombstone(
    provision, now
):
    made = provision(now=now - timedelta(hours=2))
    stocked = stock_account(made.account, now=now)
    assert resource_rows(made.account.pk) == ONE_EACH
    assert len(stored_files(made.account.pk)) == 4

    result = run(now)

    assert (result.accounts, result.files) == (1, 4)
    assert result.bytes_deleted == stocked.stored_bytes
    assert result.resources == sum(ONE_EACH.values())
    assert resource_rows(made.account.pk) == NOTHING
    assert stored_files(made.account.pk) == []
    assert not Path(default_storage.path(f"accounts/{made.account.pk}")).exists()

    tombstone = CloudAccount.objects.get(pk=made.account.pk)
    assert tombstone.state == CloudAccount.State.EXPIRED
    assert tombstone.purged_at == now
    token = ApiToken.objects.get(account=tombstone)
    assert token.revoked_because == ApiToken.RevokedBecause.EXPIRED
    with pytest.raises(TokenRevoked) as refused:
        authenticate_token(raw_token=made.api_token, account_id=None, now=now)
    assert "deployment was deleted" in refused.value.message
    assert "wrangler logout" in refused.value.message
    # The link stays, so the claim page can say "expired" rather than "unknown".
    assert ClaimLink.objects.filter(account=tombstone).exists()
    last = AuditEvent.objects.filter(account=tombstone).order_by("id").last()
    assert (last.kind, last.actor_label) == (AuditEvent.Kind.PURGED, "system")
    assert last.details["previous_state"] == "pending"


def test_only_due_accounts_are_touched(provision, now, user):
    due = provision(now=now - timedelta(hours=2)).account
    fresh = provision(now=now).account
    claimed = provision(now=now - timedelta(hours=2)).account
    owned_then_suspended = provision(now=now - timedelta(hours=2)).account
    for account in (due, fresh, claimed, owned_then_suspended):
        stock_account(account, now=now)
    CloudAccount.objects.filter(pk=claimed.pk).update(
        state=CloudAccount.State.CLAIMED, owner=user, claimed_at=now
    )
    CloudAccount.objects.filter(pk=owned_then_suspended.pk).update(
        state=CloudAccount.State.SUSPENDED,
        state_before_suspension=CloudAccount.State.CLAIMED,
        owner=user,
    )

    assert run(now).accounts == 1

    assert resource_rows(due.pk) == NOTHING
    for kept in (fresh, claimed, owned_then_suspended):
        assert resource_rows(kept.pk) == ONE_EACH
        assert len(stored_files(kept.pk)) == 4
        assert CloudAccount.objects.get(pk=kept.pk).purged_at is None


@pytest.mark.parametrize(
    ("offset", "purged"),
    [(-1, False), (0, True), (+1, True)],
    ids=["a second before", "at the deadline", "a second after"],
)
def test_the_deadline_to_the_second(provision, now, offset, purged):
    account = provision(now=now).account
    deadline = account.claim_expires_at

    result = run(deadline + timedelta(seconds=offset))

    account.refresh_from_db()
    assert result.accounts == int(purged)
    assert (account.purged_at is not None) is purged
    assert account.state == (
        CloudAccount.State.EXPIRED if purged else CloudAccount.State.PENDING
    )


def test_a_suspended_unclaimed_account_still_goes_at_its_deadline(provision, now):
    account = provision(now=now - timedelta(hours=2)).account
    CloudAccount.objects.filter(pk=account.pk).update(
        state=CloudAccount.State.SUSPENDED,
        state_before_suspension=CloudAccount.State.PENDING,
    )
    assert run(now).accounts == 1
    account.refresh_from_db()
    assert (account.state, account.state_before_suspension) == ("expired", "")


def test_an_account_expired_early_is_purged_on_the_next_run(provision, now):
    # What declining a claim or "expire now" leaves: expired, deadline moved to now.
    account = provision(now=now).account
    CloudAccount.objects.filter(pk=account.pk).update(
        state=CloudAccount.State.EXPIRED, claim_expires_at=now
    )
    stock_account(account, now=now)

    result = run(now + timedelta(seconds=5))

    assert result.accounts == 1
    assert result.max_lag_seconds == 5
    assert resource_rows(account.pk) == NOTHING
    event = AuditEvent.objects.get(account=account, kind=AuditEvent.Kind.PURGED)
    assert event.details == {"previous_state": "expired", "lag_seconds": 5.0}


def test_running_twice_changes_nothing_the_second_time(provision, now):
    stock_account(provision(now=now - timedelta(hours=2)).account, now=now)
    assert run(now).accounts == 1
    again = run(now)
    assert (again.accounts, again.resources, again.files) == (0, 0, 0)
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.PURGED).count() == 1


def test_files_left_by_a_crashed_run_are_found_by_the_next(provision, now):
    # A run that died after its commit leaves a tombstone with files under its
    # prefix; an account deleted outright may leave a folder with no row at all.
    purged = provision(now=now - timedelta(hours=2)).account
    stock_account(purged, now=now)
    CloudAccount.objects.filter(pk=purged.pk).update(
        state=CloudAccount.State.EXPIRED, purged_at=now - timedelta(minutes=1)
    )
    default_storage.save("accounts/" + "f" * 32 + "/d1/x.sqlite3", ContentFile(b"x"))
    alive = provision(now=now).account
    stock_account(alive, now=now)

    result = run(now)

    assert result.accounts == 0
    assert result.files == 5
    assert stored_files(purged.pk) == stored_files("f" * 32) == []
    assert len(stored_files(alive.pk)) == 4


def test_a_file_named_outside_the_account_prefix_goes_too(provision, now):
    account = provision(now=now - timedelta(hours=2)).account
    stock_account(account, now=now)
    elsewhere = default_storage.save("d1/elsewhere.sqlite3", ContentFile(b"rows"))
    account.d1_databases.update(storage_name=elsewhere)

    run(now)

    assert not default_storage.exists(elsewhere)


def test_every_model_holding_account_rows_is_purged_or_kept_on_purpose():
    owned = {entry.model for entry in purge.owned_tables()}
    assert owned == set(RESOURCE_TABLES)
    assert not owned & set(purge.TOMBSTONE_KEEPS)


def _expired_accounts(provision, now, count, tag):
    """Ten fully stocked accounts, the rest with a worker and KV entries each."""
    for _ in range(10):
        stock_account(provision(now=now - timedelta(hours=2)).account, now=now)
    extra = CloudAccount.objects.bulk_create(
        CloudAccount(
            name=f"{tag}-{i}",
            subdomain=f"{tag}-{i}",
            created_at=now - timedelta(hours=2),
            claim_expires_at=now - timedelta(hours=1),
        )
        for i in range(count - 10)
    )
    WorkerScript.objects.bulk_create(WorkerScript(account=a, name="w") for a in extra)
    namespaces = KVNamespace.objects.bulk_create(
        KVNamespace(account=a, title="kv") for a in extra
    )
    KVEntry.objects.bulk_create(
        KVEntry(namespace=ns, key=f"k{i}", value=b"v")
        for ns in namespaces
        for i in range(3)
    )


def test_one_batch_costs_the_same_queries_for_10_or_1000_accounts(provision, now):
    queries = {}
    for count in (10, 1000):
        _expired_accounts(provision, now, count, tag=f"n{count}")
        with CaptureQueriesContext(connection) as captured:
            assert run(now, batch_size=5000).accounts == count
        queries[count] = len(captured)
        assert resource_rows() == NOTHING
    assert queries[10] == queries[1000]


def test_the_query_count_grows_with_batches_not_accounts(provision, now):
    _expired_accounts(provision, now, 10, tag="one")
    with CaptureQueriesContext(connection) as one_batch:
        run(now, batch_size=10)
    _expired_accounts(provision, now, 40, tag="four")
    with CaptureQueriesContext(connection) as four_batches:
        run(now, batch_size=10)
    # One run: batches, plus one empty look when the last batch was full, plus
    # the same fixed tail (tombstones, sweep, backlog, PurgeRun).
    per_batch = (len(four_batches) - len(one_batch)) / 3
    assert per_batch == int(per_batch) and per_batch < 30


def test_a_time_budget_leaves_the_rest_to_the_next_run(provision, now):
    for _ in range(5):
        provision(now=now - timedelta(hours=2))
    assert run(now, batch_size=2, time_budget=0).accounts == 2
    assert run(now, batch_size=2).accounts == 3


def test_each_run_is_recorded_and_logged_in_one_line(provision, now, caplog):
    stock_account(
        provision(now=now - timedelta(minutes=60, seconds=30)).account, now=now
    )
    provision(now=now)

    with caplog.at_level(logging.INFO, logger="accounts.services.purge"):
        result = run(now)

    record = PurgeRun.objects.get()
    assert (record.accounts, record.resources) == (1, result.resources)
    assert record.bytes_deleted == result.bytes_deleted > 0
    assert record.max_lag_seconds == pytest.approx(30)
    lines = [r.getMessage() for r in caplog.records if r.name == purge.__name__]
    assert len(lines) == 1
    assert "accounts=1" in lines[0]
    assert "max_lag_s=30.0" in lines[0]
    assert "backlog=0" in lines[0]


def test_tombstones_go_after_the_retention_period(provision, now, settings):
    settings.CLAIMPORTAL_TOMBSTONE_RETENTION = timedelta(days=30)
    old = provision(now=now - timedelta(days=31)).account
    recent = provision(now=now - timedelta(days=2)).account
    run(now - timedelta(days=30, hours=12))  # purges old: a tombstone 30.5 days old
    run(now - timedelta(days=1))  # purges recent
    PurgeRun.objects.update(started_at=now - timedelta(days=31))
    PurgeRun.objects.create(started_at=now)

    result = run(now)

    assert result.tombstones == 1
    assert not CloudAccount.objects.filter(pk=old.pk).exists()
    assert not ApiToken.objects.filter(account_id=old.pk).exists()
    assert CloudAccount.objects.filter(pk=recent.pk, state="expired").exists()
    # The trail outlives the tombstone, detached but still findable.
    trail = AuditEvent.objects.filter(account_ref=old.pk)
    assert trail.filter(kind=AuditEvent.Kind.PURGED, account=None).exists()
    assert PurgeRun.objects.count() == 2  # the one at `now` and this run's


def test_purge_now_takes_an_account_before_its_deadline(provision, now, user):
    made = provision(now=now)
    stock_account(made.account, now=now)

    result = purge.purge_account_now(account=made.account, now=now, actor=user)

    assert (result.accounts, result.files) == (1, 4)
    assert resource_rows(made.account.pk) == NOTHING
    event = AuditEvent.objects.get(account=made.account, kind=AuditEvent.Kind.PURGED)
    assert (event.actor, event.actor_label) == (user, "ada")
    again = purge.purge_account_now(account=made.account, now=now, actor=user)
    assert again.accounts == 0


def test_purge_now_refuses_an_account_someone_owns(provision, now, user):
    account = provision(now=now).account
    stock_account(account, now=now)
    CloudAccount.objects.filter(pk=account.pk).update(
        state=CloudAccount.State.CLAIMED, owner=user
    )
    with pytest.raises(Conflict):
        purge.purge_account_now(account=account, now=now, actor=user)
    assert resource_rows(account.pk) == ONE_EACH


cleaned: list[list[str]] = []


def record_cleaner(*, account_ids: list[str]) -> None:
    cleaned.append(sorted(account_ids))


def broken_cleaner(*, account_ids: list[str]) -> None:
    raise RuntimeError("the runtime is down")


def test_cleaners_hear_of_every_purged_account_after_the_fact(provision, now, settings):
    settings.CLAIMPORTAL_PURGE_CLEANERS = [
        "tests.test_purge.broken_cleaner",
        "tests.test_purge.record_cleaner",
    ]
    cleaned.clear()
    ids = sorted(provision(now=now - timedelta(hours=2)).account.pk for _ in range(3))

    assert run(now, batch_size=2).accounts == 3

    assert sorted(i for batch in cleaned for i in batch) == ids
    assert [len(batch) for batch in cleaned] == [2, 1]


def test_the_command_lists_then_purges(provision, now):
    due = provision(now=now - timedelta(hours=2)).account
    stock_account(due, now=now)
    provision(now=now)

    listed = StringIO()
    call_command("purge_expired", "--dry-run", stdout=listed)
    assert due.pk in listed.getvalue()
    assert "1 account(s) would be purged" in listed.getvalue()
    assert CloudAccount.objects.get(pk=due.pk).purged_at is None

    done = StringIO()
    call_command("purge_expired", stdout=done)
    assert "Purged 1 account(s)" in done.getvalue()
    assert "4 file(s)" in done.getvalue()
    assert set(resource_rows(due.pk).values()) == {0}


def test_after_the_purge_status_and_claim_link_say_expired(provision, now, client):
    made = provision(now=now - timedelta(hours=2))
    run(now)

    status = client.get(
        reverse("api-provisioning-status", args=[made.account.pk]),
        HTTP_AUTHORIZATION=f"Bearer {made.api_token}",
    )
    assert status.status_code == HTTPStatus.OK
    assert status.json()["result"]["state"] == "expired"
    page = client.get(
        made.claim_url.removeprefix(settings.PUBLIC_BASE_URL), follow=True
    )
    assert page.status_code == HTTPStatus.GONE
    assert "expired" in page.content.decode()
