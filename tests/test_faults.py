"""Faults on real processes, reached through the edge as users reach them:
gunicorn, Celery, Redis and PostgreSQL of our own (throwaway instances on free
ports; the shared ones are never touched).

- Redis stopped: claim pages, sign-in and the API keep serving, rate limits
  (ours and allauth's) fail open,
  new accounts get a clear 503 (proof-of-work tokens need Redis to be
  single-use); the purge that was due catches up once Redis is back.
- A Celery worker killed mid-purge: nothing is half-deleted, the next run
  finishes the job.
- PostgreSQL restarted: the API answers 503 in the envelope, then recovers
  without restarting the app.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from http import HTTPStatus
from pathlib import Path

import pytest
import requests
from allauth.account.models import EmailAddress
from django.utils import timezone

from accounts.exceptions import ServiceUnavailable
from accounts.models import CloudAccount
from accounts.services import pow
from accounts.services.ratelimit import count_requests, enforce_rate_limit
from claimportal.celery import app
from claimportal.settings.base import redis_caches
from tests.conftest import (
    ROOT,
    manage,
    start_celery_worker,
    stop_process,
    subprocess_env,
)
from tests.edge import portal
from tests.every_resource import resource_rows, stock_account, stored_files
from tests.test_provisioning_api import PRIVACY, TERMS
from tests.test_tasks import PURGE_TASK, make_due, wait_for
from tests.workerupload import script_form

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("faults")]

METADATA = {"main_module": "index.js", "compatibility_date": "2026-11-01"}
PG_BIN = next(Path("/usr/lib/postgresql").glob("*/bin"), None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code < 500
    except (requests.ConnectionError, requests.Timeout):
        # A worker still importing the app on a busy machine: not yet.
        return False


@contextmanager
def redis_server(port: int) -> Iterator[subprocess.Popen]:
    process = subprocess.Popen(
        [
            *("redis-server", "--port", str(port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no"),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        assert wait_for(lambda: _redis_up(port), timeout=20)
        yield process
    finally:
        stop_process(process)


def _redis_up(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def gunicorn(**env: str) -> Iterator[str]:
    """The app as users reach it: its gunicorn pools (2 workers each) behind
    the edge, with ``env``; yields the edge's origin.

    Its rate-limit counters are its own: every caller here is 127.0.0.1, and
    the tests must neither use up nor find used up anyone else's budget."""
    env.setdefault("CLAIMPORTAL_CACHE_PREFIX", f"gunicorn-{uuid.uuid4().hex[:8]}")
    with portal(**env) as edge:
        assert wait_for(lambda: answers(edge.origin + "/auth.md"), timeout=60)
        yield edge.origin


def provision_over_http(origin: str) -> requests.Response:
    api = origin + "/client/v4/provisioning/previews"
    challenge = requests.post(api + "/challenge", json={}, timeout=30)
    if challenge.status_code != HTTPStatus.OK:
        return challenge
    found = challenge.json()["result"]
    body = {
        "termsOfService": TERMS,
        "privacyPolicy": PRIVACY,
        "acceptTermsOfService": "yes",
        "challengeToken": found["challengeToken"],
        "solution": {
            "checkpoints": pow.solve(seed=found["seed"], k=found["k"], g=found["g"])
        },
    }
    return requests.post(api, json=body, timeout=30)


def assert_serving(origin: str, made) -> None:
    """A person opens the claim link and reviews; the agent deploys and lists."""
    browser = requests.Session()
    review = browser.get(f"{origin}/claim/{made.claim_key}/", timeout=30)
    assert review.status_code == HTTPStatus.OK
    assert made.account.name in review.text
    auth = {"Authorization": f"Bearer {made.api_token}"}
    base = f"{origin}/client/v4/accounts/{made.account.id}"
    body, content_type = script_form(METADATA)
    deployed = requests.put(
        base + "/workers/scripts/survivor",
        data=body,
        headers={**auth, "Content-Type": content_type},
        timeout=30,
    )
    assert deployed.status_code == HTTPStatus.OK, deployed.text
    listed = requests.get(base + "/workers/scripts", headers=auth, timeout=30)
    assert [s["id"] for s in listed.json()["result"]] == ["survivor"]


def assert_people_can_sign_in_and_up(origin: str, user) -> None:
    """allauth's rate limits live in the cache too; they must not turn into a
    500 while it is away."""
    browser = requests.Session()
    for page in ("/accounts/login/", "/accounts/signup/"):
        assert browser.get(origin + page, timeout=30).status_code == HTTPStatus.OK
    signed_in = browser.post(
        origin + "/accounts/login/",
        data={
            "login": user.email,
            "password": "correct horse battery",
            "csrfmiddlewaretoken": browser.cookies["csrftoken"],
        },
        headers={"Referer": origin + "/accounts/login/"},
        timeout=30,
    )
    assert signed_in.status_code == HTTPStatus.OK
    assert "/accounts/login/" not in signed_in.url
    assert "sessionid" in browser.cookies


def test_redis_down_pages_and_api_serve_and_the_purge_catches_up(
    transactional_db, provision, settings, tmp_path, user
):
    EmailAddress.objects.create(
        user=user, email=user.email, verified=True, primary=True
    )
    made, doomed = provision(), provision()
    port = free_port()
    redis_url = f"redis://127.0.0.1:{port}/0"
    queue = f"faults-{uuid.uuid4().hex[:8]}"
    env = {
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "CLAIMPORTAL_CACHE_PREFIX": queue,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }
    with redis_server(port) as redis, gunicorn(**env) as origin:
        worker = subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "claimportal", "worker"),
                *("--beat", "--schedule", str(tmp_path / "beat"), "--queues", queue),
                *("--pool", "solo", "--loglevel", "ERROR", "--without-gossip"),
                *("--without-mingle", "--without-heartbeat"),
            ],
            cwd=ROOT,
            env=subprocess_env(
                CLAIMPORTAL_CELERY_QUEUE=queue,
                CLAIMPORTAL_PURGE_INTERVAL_SECONDS="2",
                **env,
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert provision_over_http(origin).status_code == HTTPStatus.OK
            stop_process(redis)
            assert not _redis_up(port)

            assert_serving(origin, made)
            assert_people_can_sign_in_and_up(origin, user)
            refused = provision_over_http(origin)
            assert refused.status_code == HTTPStatus.SERVICE_UNAVAILABLE
            assert refused.json()["errors"][0]["code"] == 10503
            health = requests.get(origin + "/healthz", timeout=30)
            assert health.status_code == HTTPStatus.SERVICE_UNAVAILABLE
            assert health.json()["broker"] is False

            # Due while Redis is away: the purge waits for it to come back.
            make_due(doomed.account)

            with redis_server(port):
                purged_after = time.monotonic()
                assert wait_for(
                    lambda: CloudAccount.objects.get(pk=doomed.account.pk).purged_at,
                    timeout=60,
                )
                purged_after = time.monotonic() - purged_after
                assert provision_over_http(origin).status_code == HTTPStatus.OK
                assert_serving(origin, made)
        finally:
            stop_process(worker)
    print(f"purge caught up {purged_after:.1f} s after Redis returned")
    assert CloudAccount.objects.get(pk=made.account.pk).purged_at is None


def test_a_worker_killed_mid_purge_leaves_nothing_half_deleted(
    transactional_db, provision, settings
):
    accounts = [provision().account for _ in range(60)]
    for account in accounts:
        stock_account(account, now=timezone.now())
        make_due(account)
    queue = f"faults-{uuid.uuid4().hex[:8]}"
    # One account per batch, each batch slowed by its files: a kill lands
    # between batches or inside one.
    worker = start_celery_worker(
        queue, settings.MEDIA_ROOT, CLAIMPORTAL_PURGE_BATCH_SIZE="1"
    )
    try:
        app.send_task(PURGE_TASK, queue=queue)

        def some_purged() -> bool:
            return CloudAccount.objects.filter(purged_at__isnull=False).count() >= 3

        assert wait_for(some_purged, timeout=60, every=0.02)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    finally:
        if worker.poll() is None:
            stop_process(worker)

    done = CloudAccount.objects.filter(purged_at__isnull=False).count()
    assert 3 <= done < len(accounts), "the kill came too late to prove anything"
    full = resource_rows(accounts[-1].pk)
    for account in CloudAccount.objects.all():
        rows = resource_rows(account.pk)
        if account.purged_at is None:
            assert rows == full, account.pk  # untouched
        else:
            assert set(rows.values()) == {0}, account.pk  # gone entirely

    worker = start_celery_worker(
        queue, settings.MEDIA_ROOT, CLAIMPORTAL_PURGE_BATCH_SIZE="1"
    )
    try:
        result = app.send_task(PURGE_TASK, queue=queue).get(timeout=120)
    finally:
        stop_process(worker)
    assert result["accounts"] == len(accounts) - done
    assert not CloudAccount.objects.filter(purged_at__isnull=True).exists()
    for account in accounts:
        assert set(resource_rows(account.pk).values()) == {0}
        assert stored_files(account.pk) == []


@contextmanager
def postgres_cluster() -> Iterator[tuple[int, Callable, Callable]]:
    """A throwaway PostgreSQL cluster; yields its port, stop and start."""
    # Outside pytest's tmp_path, which the postgres user cannot enter.
    directory = Path(tempfile.mkdtemp(prefix="claimportal-pg-"))
    shutil.chown(directory, "postgres")
    data, port = directory / "data", free_port()

    def as_postgres(*command: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *command],
            check=True,
            capture_output=True,
            timeout=120,
        )

    as_postgres(
        str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"
    )
    options = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = [
        str(PG_BIN / "pg_ctl"),
        "-D",
        str(data),
        "-w",
        "-l",
        str(directory / "log"),
    ]

    def start() -> None:
        as_postgres(*pg_ctl, "-o", options, "start")

    def stop() -> None:
        as_postgres(*pg_ctl, "-m", "fast", "stop")

    start()
    try:
        yield port, stop, start
    finally:
        stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.skipif(PG_BIN is None, reason="needs PostgreSQL's server binaries")
def test_postgres_restarted_gives_503_then_recovers_without_a_restart(tmp_path):
    with postgres_cluster() as (port, stop, start):
        database_url = f"postgres://postgres@127.0.0.1:{port}/postgres"
        env = {"DATABASE_URL": database_url, "MEDIA_ROOT": str(tmp_path / "media")}
        migrate = manage("migrate", "--no-input", env={**subprocess_env(), **env})
        assert migrate.returncode == 0, migrate.stderr[-2000:]
        with gunicorn(**env) as origin:
            made = provision_over_http(origin).json()["result"]["account"]
            accounts = origin + "/client/v4/accounts"
            auth = {"Authorization": f"Bearer {made['apiToken']}"}
            assert requests.get(accounts, headers=auth, timeout=30).ok

            stop()
            down = requests.get(accounts, headers=auth, timeout=30)
            assert down.status_code == HTTPStatus.SERVICE_UNAVAILABLE
            body = down.json()
            assert body["success"] is False and body["errors"][0]["code"] == 10503
            assert provision_over_http(origin).status_code == (
                HTTPStatus.SERVICE_UNAVAILABLE
            )

            start()
            back = requests.get(accounts, headers=auth, timeout=30)
            assert back.status_code == HTTPStatus.OK
            assert [a["id"] for a in back.json()["result"]] == [made["id"]]


def test_rate_limits_fail_open_and_proofs_of_work_fail_closed_without_redis(
    settings, now
):
    # The configured caches, on a port nobody listens on.
    settings.CACHES = redis_caches(f"redis://127.0.0.1:{free_port()}/0", "down")
    counts, _ = count_requests(buckets=["a", "b"], window=60, now=now)
    assert counts == [0, 0]
    for _ in range(3):
        enforce_rate_limit(bucket="a", limit=1, window=60, now=now, message="x")
    challenge = pow.issue_challenge(now=now, k=8, g=50, ttl=timedelta(minutes=5))
    checkpoints = pow.solve(seed=challenge.seed, k=8, g=50)
    with pytest.raises(ServiceUnavailable):
        pow.redeem_challenge(
            token=challenge.token, checkpoints=checkpoints, now=now, spot_checks=3
        )
