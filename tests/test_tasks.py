"""The purge on real Celery processes: beat schedules it, workers run it."""

import time
import uuid
from collections import Counter
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.utils import timezone

from accounts.models import AuditEvent, CloudAccount, PurgeRun
from accounts.tasks import check_database
from accounts.tasks import purge_expired_accounts as purge_task
from claimportal.celery import app
from tests.conftest import (
    start_celery_beat,
    start_celery_worker,
    stop_process,
)
from tests.every_resource import resource_rows, stock_account, stored_files

PURGE_TASK = "accounts.tasks.purge_expired_accounts"


def wait_for(condition, *, timeout: float, every: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()


def make_due(account: CloudAccount) -> None:
    """Move an account's deadline just into the past, as time would."""
    past = timezone.now() - timedelta(seconds=1)
    CloudAccount.objects.filter(pk=account.pk).update(claim_expires_at=past)


def test_the_schedule_runs_the_purge_every_interval_and_never_piles_up(settings):
    app.finalize()
    entry = app.conf.beat_schedule["purge-expired-accounts"]
    interval = settings.CLAIMPORTAL_PURGE_INTERVAL_SECONDS
    assert entry["task"] == PURGE_TASK == purge_task.name
    assert entry["schedule"] == timedelta(seconds=interval) <= timedelta(minutes=1)
    assert 0 < entry["options"]["expires"] <= interval
    assert purge_task.soft_time_limit < purge_task.time_limit
    assert purge_task.max_retries >= 1 and purge_task.autoretry_for


def test_beat_and_a_worker_purge_everything_due_and_nothing_else(
    celery_worker, provision, user, client, settings, tmp_path
):
    doomed = [provision() for _ in range(2)]
    for made in doomed:
        stock_account(made.account, now=timezone.now())
    fresh = provision().account
    claimed = provision().account
    for account in (fresh, claimed):
        stock_account(account, now=timezone.now())
    CloudAccount.objects.filter(pk=claimed.pk).update(
        state=CloudAccount.State.CLAIMED, owner=user, claimed_at=timezone.now()
    )
    make_due(claimed)  # a claimed account outlives its old deadline
    for made in doomed:
        make_due(made.account)

    beat = start_celery_beat(
        celery_worker,
        tmp_path / "beat-schedule",
        CLAIMPORTAL_PURGE_INTERVAL_SECONDS="1",
    )
    try:
        assert wait_for(lambda: PurgeRun.objects.count() >= 3, timeout=60)
    finally:
        stop_process(beat)

    for made in doomed:
        account = CloudAccount.objects.get(pk=made.account.pk)
        assert (account.state, account.purged_at is not None) == ("expired", True)
        assert set(resource_rows(account.pk).values()) == {0}
        assert stored_files(account.pk) == []
        refused = client.get(
            "/client/v4/accounts", HTTP_AUTHORIZATION=f"Bearer {made.api_token}"
        )
        assert refused.status_code == HTTPStatus.UNAUTHORIZED
        message = refused.json()["errors"][0]["message"]
        assert "deleted" in message and "wrangler logout" in message
    for kept in (fresh, claimed):
        assert CloudAccount.objects.get(pk=kept.pk).purged_at is None
        assert resource_rows(kept.pk)["KVEntry"] == 3
        assert len(stored_files(kept.pk)) == 4
    runs = PurgeRun.objects.filter(accounts__gt=0)
    assert sum(runs.values_list("accounts", flat=True)) == 2
    assert max(runs.values_list("max_lag_seconds", flat=True)) < 60


@pytest.mark.slow
def test_two_workers_running_the_purge_at_once_delete_each_account_once(
    transactional_db, provision, settings
):
    accounts = [provision().account for _ in range(120)]
    for account in accounts[:4]:
        stock_account(account, now=timezone.now())
    CloudAccount.objects.update(claim_expires_at=timezone.now())
    queue = f"test-{uuid.uuid4().hex[:10]}"
    workers = [
        start_celery_worker(
            queue, settings.MEDIA_ROOT, CLAIMPORTAL_PURGE_BATCH_SIZE="4"
        )
        for _ in range(2)
    ]
    try:
        assert check_database.apply_async(queue=queue).get(timeout=60) is True
        sent = [app.send_task(PURGE_TASK, queue=queue) for _ in range(2)]
        results = [result.get(timeout=60) for result in sent]
    finally:
        for worker in workers:
            stop_process(worker)

    assert sum(r["accounts"] for r in results) == 120
    assert sum(r["files"] for r in results) == 16
    purged = Counter(
        AuditEvent.objects.filter(kind=AuditEvent.Kind.PURGED).values_list(
            "account_ref", flat=True
        )
    )
    assert set(purged) == {a.pk for a in accounts}
    assert set(purged.values()) == {1}
