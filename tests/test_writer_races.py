"""Every writer of every resource kind against the purge and against itself,
in real concurrent transactions: each locks the live account first
(`lock_live_account`) and re-checks it there."""

import threading
from datetime import timedelta

import pytest
from django.db import transaction
from django.db.transaction import TransactionManagementError

from accounts.exceptions import AccountNotFound, DomainError
from accounts.models import CloudAccount
from accounts.services import (
    assets,
    certificates,
    d1,
    hyperdrive,
    kv,
    purge,
    queues,
    workers,
)
from accounts.services.locking import lock_live_account
from tests.cloudapi import make_pem
from tests.conftest import run_concurrently
from tests.every_resource import resource_rows
from tests.test_purge_races import purge_while_held
from tests.workerupload import module_upload

pytestmark = pytest.mark.django_db(transaction=True)

MANIFEST = {"/index.html": assets.AssetFile(hash="a" * 32, size=5)}


@pytest.fixture(scope="module")
def pem(tmp_path_factory) -> str:
    cert, _key = make_pem(tmp_path_factory.mktemp("pem"), "writer-races")
    return cert.read_text()


def writers(pem: str):
    """One write per resource kind, each a function of (account, now, n): ``n``
    tells concurrent creates apart."""
    return {
        "KV namespace": lambda a, now, n: kv.create_namespace(
            account=a, title=f"ns-{n}", now=now
        ),
        "D1 database": lambda a, now, n: d1.create_database(
            account=a, name=f"db-{n}", now=now
        ),
        "queue": lambda a, now, n: queues.create_queue(
            account=a, name=f"q-{n}", now=now
        ),
        "Hyperdrive config": lambda a, now, n: hyperdrive.create_config(
            account=a,
            name=f"pg-{n}",
            origin={
                "host": "db.example.com",
                "port": 5432,
                "database": "shop",
                "user": "app",
                "scheme": "postgres",
            },
            password="pw",
            now=now,
        ),
        "certificate": lambda a, now, n: certificates.upload_certificate(
            account=a, ca=True, certificates=pem, name=f"c{n}", now=now
        ),
        "asset upload": lambda a, now, n: assets.open_upload_session(
            account=a, script_name=f"w{n}", manifest=MANIFEST, now=now
        ),
        "Worker": lambda a, now, n: workers.upload_version(
            account=a,
            script_name=f"w{n}",
            upload=module_upload(),
            deploy=True,
            now=now,
        ),
    }


KINDS = [
    "KV namespace",
    "D1 database",
    "queue",
    "Hyperdrive config",
    "certificate",
    "asset upload",
    "Worker",
]
# The quota setting for each kind that has one.
QUOTAS = {
    "KV namespace": "CLAIMPORTAL_KV_MAX_NAMESPACES",
    "D1 database": "CLAIMPORTAL_D1_MAX_DATABASES",
    "queue": "CLAIMPORTAL_QUEUES_MAX",
    "Hyperdrive config": "CLAIMPORTAL_HYPERDRIVE_MAX_CONFIGS",
    "certificate": "CLAIMPORTAL_CERTIFICATES_MAX",
    "Worker": "CLAIMPORTAL_MAX_WORKERS",
}


def almost_due(provision, now):
    """An account one minute before its deadline, and that deadline."""
    account = provision(now=now - timedelta(minutes=59)).account
    return account, account.claim_expires_at


@pytest.mark.parametrize("kind", KINDS)
def test_a_write_and_the_purge_never_overlap(kind, provision, now, pem):
    write = writers(pem)[kind]
    # A write in flight holds the account: the purge skips it this time.
    held, deadline = almost_due(provision, now)
    during, errors = purge_while_held(
        lambda: write(held, deadline - timedelta(seconds=1), 0),
        now=deadline + timedelta(seconds=1),
    )
    assert (errors, during.accounts) == ([], 0)

    # A write that reaches the lock after the purge is refused, though its
    # clock still reads before the deadline: the locked row decides.
    late, deadline = almost_due(provision, now)
    stale = CloudAccount.objects.get(pk=late.pk)  # read while it was live
    after = purge.purge_expired_accounts(
        now=deadline + timedelta(seconds=2), batch_size=10
    )
    assert after.accounts == 2  # the one skipped, with what was written to it
    with pytest.raises(AccountNotFound):
        write(stale, deadline - timedelta(seconds=1), 1)
    assert sum(resource_rows(held.pk).values()) == 0
    assert sum(resource_rows(late.pk).values()) == 0


@pytest.mark.parametrize("kind", list(QUOTAS))
def test_concurrent_creates_never_pass_the_quota_together(
    kind, provision, now, pem, settings
):
    account = provision().account
    setattr(settings, QUOTAS[kind], 1)
    counter = iter(range(100))
    lock = threading.Lock()

    def create():
        with lock:
            n = next(counter)
        try:
            writers(pem)[kind](account, now, n)
            return "made"
        except DomainError:
            return "refused"

    outcomes = run_concurrently(create, 4)
    assert sorted(outcomes) == ["made", "refused", "refused", "refused"]


def test_the_lock_needs_a_transaction_and_refuses_what_is_not_live(provision, now):
    account = provision().account
    with pytest.raises(TransactionManagementError):
        lock_live_account(account_id=account.pk, now=now)
    with transaction.atomic():
        assert lock_live_account(account_id=account.pk, now=now) == account
    with transaction.atomic(), pytest.raises(AccountNotFound):
        lock_live_account(account_id=account.pk, now=account.claim_expires_at)
    with transaction.atomic(), pytest.raises(AccountNotFound):
        lock_live_account(account_id="0" * 32, now=now)
    CloudAccount.objects.filter(pk=account.pk).update(state="suspended")
    with transaction.atomic(), pytest.raises(AccountNotFound):
        lock_live_account(account_id=account.pk, now=now)
