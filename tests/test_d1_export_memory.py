"""The D1 export bomb against a real gunicorn worker: a database whose virtual
column makes every row 1 MB when read, next to 40 MB of real blobs (80 MB of
SQL text). The download streams while the worker's peak memory stays flat, and
its link is spent after one use."""

import subprocess
import sys
import time
from http import HTTPStatus
from pathlib import Path

import pytest
import requests

from accounts.services import d1
from tests.conftest import ROOT, stop_process, subprocess_env
from tests.test_d1_api import BOMB
from tests.test_faults import answers, free_port
from tests.test_tasks import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

MIB = 1024 * 1024


def peak_rss(pid: int) -> int:
    """The most memory the process has held so far (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def only_worker(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def test_the_export_bomb_streams_with_a_workers_memory_flat(provision, now, settings):
    made = provision()
    database = d1.create_database(account=made.account, name="bomb", now=now)
    d1.run_queries(
        database=database,
        queries=[
            d1.Query(BOMB),
            d1.Query(
                "CREATE TABLE blobs (b BLOB); INSERT INTO blobs WITH RECURSIVE "
                "c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 40) "
                "SELECT zeroblob(1000000) FROM c"
            ),
        ],
    )
    port = free_port()
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "gunicorn", "claimportal.wsgi:application"),
            *("--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4"),
            *("--log-level", "warning", "--no-control-socket"),
        ],
        cwd=ROOT,
        env=subprocess_env(MEDIA_ROOT=str(settings.MEDIA_ROOT)),
    )
    origin = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: answers(origin + "/auth.md"), timeout=60)
        base = f"{origin}/client/v4/accounts/{made.account.pk}/d1/database/"
        auth = {"Authorization": f"Bearer {made.api_token}"}
        exported = requests.post(
            f"{base}{database.uuid}/export", json={}, headers=auth, timeout=60
        )
        assert exported.status_code == HTTPStatus.OK, exported.text
        link = exported.json()["result"]["result"]["signed_url"]
        worker = only_worker(server.pid)
        before = peak_rss(worker)

        started = time.monotonic()
        received = 0
        with requests.get(link, stream=True, timeout=120) as download:
            assert download.status_code == HTTPStatus.OK
            for chunk in download.iter_content(MIB):
                received += len(chunk)
        took = time.monotonic() - started
        grown = peak_rss(worker) - before

        # 40 blobs of 1 MB in hex, and 600 bomb rows of a few bytes each.
        assert 80 * 10**6 < received < 81 * 10**6
        assert grown < 32 * MIB, f"peak RSS grew {grown / MIB:.0f} MiB in {took:.1f}s"
        again = requests.get(link, timeout=60)
        assert again.status_code == HTTPStatus.GONE
        assert again.json()["errors"][0]["code"] == 7410
    finally:
        stop_process(server)
