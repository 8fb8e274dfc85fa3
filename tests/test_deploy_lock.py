"""A deploy starts its Worker in workerd before it locks the account, so a
claim or a purge never waits for a start check."""

import tempfile
import time
from pathlib import Path

import pytest
from django.db import OperationalError, connection, transaction

from accounts.models import CloudAccount, WorkerVersion
from accounts.services import workers
from tests.e2e.conftest import node_tools_dir
from tests.test_purge_races import in_thread
from tests.workerupload import module_upload

pytestmark = [pytest.mark.runtime, pytest.mark.django_db(transaction=True)]

# Slow enough to start that the check is seen while it runs.
SLOW_START = b"""
let n = 0;
for (let i = 0; i < 50000000; i++) n += i % 7;
export default { fetch() { return new Response(String(n)); } };
"""


def account_is_free(account_id: str) -> bool:
    """Whether the account's row can be locked right now, without waiting."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM accounts_cloudaccount WHERE id = %s FOR UPDATE NOWAIT",
                [account_id],
            )
        return True
    except OperationalError:
        return False


def test_the_account_stays_free_while_a_deploy_starts_its_worker(
    provision, now, settings, tmp_path, monkeypatch
):
    settings.CLAIMPORTAL_WORKERD_BIN = str(
        node_tools_dir() / "node_modules" / "workerd" / "bin" / "workerd"
    )
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where checks start
    account = provision().account
    thread, results, errors = in_thread(
        lambda: workers.upload_version(
            account=account,
            script_name="slow",
            upload=module_upload(SLOW_START),
            deploy=True,
            now=now,
        )
    )
    seen_checking, free_while_checking = 0, 0
    deadline = time.monotonic() + 120
    while thread.is_alive() and time.monotonic() < deadline:
        if any(Path(tmp_path).glob("cp-check-*")):
            free = account_is_free(account.pk)
            if any(Path(tmp_path).glob("cp-check-*")):  # still checking after
                seen_checking += 1
                free_while_checking += free
        time.sleep(0.01)
    thread.join(30)

    assert errors == []
    assert seen_checking > 0, "the start check was never seen"
    assert free_while_checking == seen_checking
    version = WorkerVersion.objects.get(script__account=account)
    assert version.startup_time_ms and version.startup_time_ms > 0
    assert results[0].deployment is not None
    # A claim-like lock of the account takes it at once afterwards too.
    assert account_is_free(account.pk)
    assert CloudAccount.objects.get(pk=account.pk).state == "pending"
