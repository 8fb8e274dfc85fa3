"""Purge against claims and against itself, in real concurrent transactions."""

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, transaction

from accounts.exceptions import ClaimExpired
from accounts.models import AuditEvent, CloudAccount
from accounts.services import purge
from accounts.services.claims import confirm_claim
from tests.every_resource import resource_rows, stock_account, stored_files

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = 20  # seconds a thread waits for the other before the test gives up


def in_thread(target) -> tuple[threading.Thread, list, list]:
    """Run ``target`` on its own database connection; collect result or error."""
    results, errors = [], []

    def run():
        try:
            results.append(target())
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, results, errors


def hold_lock_until(released: threading.Event, locked: threading.Event, work):
    """Do ``work`` in a transaction and keep its row locks until ``released``."""

    def target():
        with transaction.atomic():
            value = work()
            locked.set()
            assert released.wait(WAIT)
        return value

    return target


def purge_while_held(work, *, now) -> tuple[purge.PurgeResult, list]:
    """Run the purge at ``now`` while ``work``'s transaction holds its locks;
    the purge's result and the errors of ``work``."""
    locked, released = threading.Event(), threading.Event()
    thread, _results, errors = in_thread(hold_lock_until(released, locked, work))
    while not locked.wait(0.05):  # the work holds its locks, or failed
        assert thread.is_alive(), errors
    try:
        return purge.purge_expired_accounts(now=now, batch_size=10), errors
    finally:
        released.set()
        thread.join(WAIT)


def expired(provision, now):
    return provision(now=now - timedelta(hours=2)).account


def test_two_purges_at_once_share_the_work_and_delete_each_account_once(provision, now):
    accounts = [expired(provision, now) for _ in range(60)]
    for account in accounts[:6]:
        stock_account(account, now=now)
    start = threading.Barrier(2)

    def purge_all():
        start.wait(WAIT)
        return purge.purge_expired_accounts(now=now, batch_size=3)

    runs = [in_thread(purge_all) for _ in range(2)]
    for thread, _results, _errors in runs:
        thread.join(WAIT)

    assert [errors for _t, _r, errors in runs] == [[], []]
    results = [results[0] for _t, results, _e in runs]
    assert sum(r.accounts for r in results) == 60
    assert sum(r.files for r in results) == 6 * 4
    purged_per_account = Counter(
        AuditEvent.objects.filter(kind=AuditEvent.Kind.PURGED).values_list(
            "account_ref", flat=True
        )
    )
    assert set(purged_per_account) == {a.pk for a in accounts}
    assert set(purged_per_account.values()) == {1}
    assert resource_rows() == dict.fromkeys(resource_rows(), 0)


def test_an_account_locked_elsewhere_is_skipped_not_waited_for(provision, now):
    held, *_others = [expired(provision, now) for _ in range(3)]
    locked, released = threading.Event(), threading.Event()
    thread, _results, errors = in_thread(
        hold_lock_until(
            released,
            locked,
            lambda: CloudAccount.objects.select_for_update().get(pk=held.pk),
        )
    )
    assert locked.wait(WAIT)
    try:
        first = purge.purge_expired_accounts(now=now, batch_size=10)
    finally:
        released.set()
        thread.join(WAIT)

    assert errors == []
    assert first.accounts == 2
    assert CloudAccount.objects.get(pk=held.pk).purged_at is None
    assert purge.purge_expired_accounts(now=now, batch_size=10).accounts == 1


def test_a_claim_confirmed_before_the_deadline_wins_over_a_purge_after_it(
    provision, now, user
):
    made = provision(now=now - timedelta(minutes=59))
    stock_account(made.account, now=now)
    deadline = made.account.claim_expires_at
    during, errors = purge_while_held(
        lambda: confirm_claim(
            key=made.claim_key,
            account_id=made.account.pk,
            user=user,
            now=deadline - timedelta(seconds=1),
        ),
        now=deadline + timedelta(seconds=1),
    )
    after = purge.purge_expired_accounts(
        now=deadline + timedelta(seconds=2), batch_size=10
    )

    assert errors == []
    assert during.accounts == after.accounts == 0
    account = CloudAccount.objects.get(pk=made.account.pk)
    assert (account.state, account.owner, account.purged_at) == ("claimed", user, None)
    assert resource_rows(account.pk)["KVEntry"] == 3
    assert len(stored_files(account.pk)) == 4


def test_a_claim_that_reaches_the_lock_after_the_purge_gets_expired(
    provision, now, user
):
    made = provision(now=now - timedelta(minutes=59))
    deadline = made.account.claim_expires_at
    assert (
        purge.purge_expired_accounts(
            now=deadline + timedelta(seconds=1), batch_size=10
        ).accounts
        == 1
    )

    # Its clock still reads before the deadline: the locked row decides.
    with pytest.raises(ClaimExpired):
        confirm_claim(
            key=made.claim_key,
            account_id=made.account.pk,
            user=user,
            now=deadline - timedelta(seconds=1),
        )
    account = CloudAccount.objects.get(pk=made.account.pk)
    assert (account.state, account.owner) == ("expired", None)


def test_claim_and_purge_racing_leave_an_account_wholly_one_or_the_other(
    provision, now, user
):
    outcomes = Counter()
    for _ in range(8):
        made = provision(now=now - timedelta(minutes=59))
        stock_account(made.account, now=now)
        deadline = made.account.claim_expires_at
        start = threading.Barrier(2)

        def claim(made=made, deadline=deadline, start=start):
            start.wait(WAIT)
            return confirm_claim(
                key=made.claim_key,
                account_id=made.account.pk,
                user=user,
                now=deadline - timedelta(milliseconds=1),
            )

        def purge_now(deadline=deadline, start=start):
            start.wait(WAIT)
            return purge.purge_expired_accounts(
                now=deadline + timedelta(milliseconds=1), batch_size=10
            )

        (c_thread, _claimed, c_errors), (p_thread, purged, p_errors) = (
            in_thread(claim),
            in_thread(purge_now),
        )
        c_thread.join(WAIT)
        p_thread.join(WAIT)

        assert p_errors == []
        account = CloudAccount.objects.get(pk=made.account.pk)
        rows, files = resource_rows(account.pk), stored_files(account.pk)
        if account.state == CloudAccount.State.CLAIMED:
            assert c_errors == [] and purged[0].accounts == 0
            assert (account.owner, account.purged_at) == (user, None)
            assert rows["WorkerModule"] == 1 and rows["KVEntry"] == 3
            assert len(files) == 4
            outcomes["claimed"] += 1
        else:
            assert [type(e) for e in c_errors] == [ClaimExpired]
            assert purged[0].accounts == 1
            assert (account.state, account.owner) == ("expired", None)
            assert account.purged_at is not None
            assert set(rows.values()) == {0} and files == []
            outcomes["purged"] += 1
    assert sum(outcomes.values()) == 8
