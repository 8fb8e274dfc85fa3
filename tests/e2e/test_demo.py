"""bin/demo against a live server, as a person runs it: both agents (the Python
client, and the real wrangler), the printed box, the claim page its claim URL
opens (which must list everything the sample deployed), and the sample itself
answering in the real preview runtime."""

import http.cookiejar
import os
import re
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from accounts.models import CloudAccount, D1Database, WorkerScript
from accounts.services import claims, d1, purge
from accounts.tasks import check_database
from claimportal_client import load_project
from claimportal_client.demo import resources
from tests import preview_runtime
from tests.conftest import ROOT, start_celery_beat, start_celery_worker, stop_process
from tests.e2e.conftest import node_tools_dir

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("previews")]

runtime = preview_runtime.runtime
preview_settings = preview_runtime.preview_settings
_media_root = preview_runtime._media_root

SAMPLE = ROOT / "examples" / "agent-demo"
DEMO_TIMEOUT = 240
# What the claim page must show for each resource the sample deploys.
EXPECTED_ON_CLAIM_PAGE = [
    "agent-demo",
    "agent-demo-cache",
    "agent-demo-notes",
    "Counter",
    "agent-demo-jobs",
    "3 files",
]


@pytest.fixture
def queues_run(runtime, preview_settings, tmp_path) -> Iterator[str]:
    """What bin/run runs for the sample's queue: a real Celery worker and beat
    (batches are dispatched every second), on a Celery queue of their own."""
    name = f"demo-{uuid.uuid4().hex[:10]}"
    env = {"CLAIMPORTAL_PREVIEW_STATE_DIR": str(runtime.state_dir)}
    worker = start_celery_worker(name, runtime.media_root, concurrency=2, **env)
    beat = start_celery_beat(name, tmp_path / "beat-schedule", **env)
    try:
        assert check_database.apply_async(queue=name).get(timeout=90) is True
        yield name
    finally:
        stop_process(beat)
        stop_process(worker)


@pytest.fixture
def server(live_server, preview_settings, queues_run):
    settings = preview_settings
    settings.PUBLIC_BASE_URL = live_server.url
    settings.CLAIMPORTAL_RATE_LIMIT_PER_IP = 10_000
    settings.CLAIMPORTAL_RATE_LIMIT_GLOBAL = 10_000
    return live_server.url


@contextmanager
def demo(
    server: str, *args: str, tools: Path | None = None
) -> Iterator[subprocess.Popen]:
    """bin/demo running; killed on the way out if it has not finished."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(ROOT)),
        "CLAIMPORTAL_URL": server,
        "CLAIMPORTAL_NODE_TOOLS": str(tools or ROOT / "no-node-tools"),
    }
    process = subprocess.Popen(
        [str(ROOT / "bin" / "demo"), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Reading its pipes has no timeout of its own: a hung demo fails the test.
    watchdog = threading.Timer(DEMO_TIMEOUT, process.kill)
    watchdog.daemon = True
    watchdog.start()
    try:
        yield process
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()


def read_box(process: subprocess.Popen) -> str:
    """stdout up to the end of the box (the QR code follows it)."""
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("╰"):
            return "".join(lines)
    process.wait(timeout=30)
    raise AssertionError("no box printed:\n" + "".join(lines) + process.stderr.read())


def claim_page(claim_url: str) -> tuple[int, str]:
    """What a person's browser shows for the claim URL (the key moves into the
    session and the page is the key-less review)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    try:
        with opener.open(claim_url, timeout=30) as page:
            assert page.url.endswith("/claim/")
            return page.status, text_of(page.read().decode())
    except urllib.error.HTTPError as error:
        return error.code, text_of(error.read().decode())


def assert_claim_page_lists_everything(claim_url: str) -> None:
    status, page = claim_page(claim_url)
    assert status == 200
    for name in EXPECTED_ON_CLAIM_PAGE:
        assert name in page, name


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def assert_box_names(box: str, server: str) -> tuple[str, str]:
    claim_url = re.search(r"Claim URL:\s+(\S+)", box).group(1)
    preview_url = re.search(r"Preview URL:\s+(\S+)", box).group(1)
    assert claim_url.startswith(f"{server}/claim/")
    assert "Click here to keep this deployment" in box
    for item in resources(load_project(SAMPLE)):
        assert item.split()[-1] in box.replace("\n│  ", " ")
    return claim_url, preview_url


def assert_seeded(account: CloudAccount) -> None:
    database = D1Database.objects.get(account=account, name="agent-demo-notes")
    (result,) = d1.run_queries(
        database=database, queries=[d1.Query("SELECT count(*) FROM notes")]
    )
    assert result.rows == [[3]]


def assert_the_sample_runs(runtime, preview_url: str) -> str:
    """The preview URL's host serves the sample: its site and every binding."""
    host = urllib.parse.urlsplit(preview_url).hostname
    runtime.reconcile()
    page = runtime.get(host, "/")
    assert page.status == 200 and "<h1>agent-demo</h1>" in page.text
    notes = runtime.get(host, "/api/notes").json()
    assert [note["id"] for note in notes] == [1, 2, 3]
    assert runtime.get(host, "/api/visits").json() == {"visits": 1}
    assert runtime.get(host, "/api/counter").json() == {"count": 1}
    assert runtime.get(host, "/api/counter").json() == {"count": 2}
    assert runtime.get(host, "/api/jobs", method="POST").status == 202
    runtime.wait_for(
        lambda: runtime.get(host, "/api/last-job").json(),
        timeout=60,  # beat's next round, then a worker, on a busy machine
        what="the queue consumer to handle the job",
    )
    return host


def test_the_python_agent_deploys_and_waits_for_the_claim(server, runtime, user):
    with demo(server, "--via", "python", "--wait") as process:
        box = read_box(process)
        claim_url, preview_url = assert_box_names(box, server)
        assert "deployed by the Python client" in box
        account = CloudAccount.objects.get()
        assert preview_url.startswith(f"http://agent-demo.{account.subdomain}.")
        assert_seeded(account)
        assert_the_sample_runs(runtime, preview_url)

        assert_claim_page_lists_everything(claim_url)

        # The person claims; the waiting agent hears of it and stops.
        key = claim_url.rstrip("/").rsplit("/", 1)[1]
        claims.confirm_claim(
            key=key, account_id=account.id, user=user, now=timezone.now()
        )
        rest, errors = process.communicate(timeout=60)
    assert process.returncode == 0, errors
    assert f"✔ Claimed: {account.name}" in rest
    assert "Waiting for a person to claim it" in errors


def test_wrangler_deploys_the_sample_and_an_unclaimed_one_is_purged(
    server, runtime, settings
):
    with demo(server, tools=node_tools_dir()) as process:
        box = read_box(process)
        rest, errors = process.communicate(timeout=120)
    assert process.returncode == 0, errors
    assert "deployed by wrangler" in box
    assert "Scan to open the claim URL" in rest
    # wrangler itself did the work: its own output went by on stderr.
    assert "Solving proof-of-work challenge" in errors
    assert "Executed 2 commands" in errors
    claim_url, preview_url = assert_box_names(box, server)
    account = CloudAccount.objects.get()
    assert account.user_agent.startswith(("undici", "wrangler"))
    assert_seeded(account)
    host = assert_the_sample_runs(runtime, preview_url)
    assert_claim_page_lists_everything(claim_url)

    # Nobody claims it: after the window, the purge leaves nothing behind.
    later = timezone.now() + settings.CLAIMPORTAL_CLAIM_WINDOW
    purge.purge_expired_accounts(now=later + timedelta(seconds=1), batch_size=10)
    assert not WorkerScript.objects.filter(account=account).exists()
    assert not D1Database.objects.filter(account=account).exists()
    status, page = claim_page(claim_url)
    assert status == 410
    assert "has expired" in page
    runtime.reconcile()
    gone = runtime.get(host, "/api/notes")
    assert gone.status == 410 and "expired and was deleted" in gone.text


def test_without_a_server_the_demo_says_to_start_one(db):
    with demo("http://127.0.0.1:9", "--via", "python") as process:
        out, errors = process.communicate(timeout=60)
    assert process.returncode == 1
    assert out == ""
    assert "Is claimportal running? Start it with bin/run." in errors
