"""Builders and live processes shared by the suite."""

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest
from django.db import OperationalError, connection
from django.db.backends.postgresql.operations import DatabaseOperations
from django.utils import timezone
from psycopg.errors import DeadlockDetected

from accounts.services.provisioning import (
    ProvisionedAccount,
    create_temporary_account,
    forget_blocklist,
)
from tests.database_template import ensure_template

ROOT = Path(__file__).resolve().parent.parent
E2E_TESTS = ROOT / "tests" / "e2e"  # all of them drive wrangler or a live server

# What a test uses decides its tier: a fixture named here marks every test that
# asks for it, directly or through other fixtures, so a new test is sorted by
# what it needs. `--fast` runs only the tests that carry none of these marks.
TIER_OF_FIXTURE = {
    "browser": "browser",  # Chromium through Playwright
    "runtime": "runtime",  # the preview runtime, workerd
    "preview_settings": "runtime",
    "two_runtimes": "runtime",  # two preview runtimes behind one edge
    "wrangler": "e2e",  # the real wrangler on Node
    "live_server": "e2e",  # a real server in a thread
    "celery_worker": "slow",  # a Celery worker process
}
SLOW_TIERS = ("e2e", "runtime", "browser", "slow")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast",
        action="store_true",
        help="only tests without browsers, workerd, wrangler, fuzzing, "
        "servers or child processes",
    )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The fast tier does not even import the end-to-end tests."""
    if config.getoption("--fast") and collection_path.is_relative_to(E2E_TESTS):
        return True
    return None


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    for item in items:
        used = getattr(item, "fixturenames", ())
        for tier in {TIER_OF_FIXTURE[name] for name in used if name in TIER_OF_FIXTURE}:
            item.add_marker(tier)
        if item.path.is_relative_to(E2E_TESTS):
            item.add_marker("e2e")
    if not config.getoption("--fast"):
        return
    kept, slow = [], []
    for item in items:
        tiered = any(item.get_closest_marker(tier) for tier in SLOW_TIERS)
        (slow if tiered else kept).append(item)
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = kept


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix,
    django_db_blocker,
    django_db_use_migrations,
    django_db_keepdb,
    django_db_createdb,
) -> None:
    """Each test process copies its database from one migrated template
    instead of migrating its own (`--create-db`: migrates its own)."""
    if not django_db_use_migrations or django_db_keepdb or django_db_createdb:
        return
    with django_db_blocker.unblock():
        template = ensure_template()
    connection.settings_dict["TEST"]["TEMPLATE"] = template


def _delete_every_row(
    self, style, tables, *, reset_sequences=False, allow_cascade=False
):
    """The flush after each transactional test as DELETEs: a test leaves a few
    rows in a few tables, and one TRUNCATE of all of them costs PostgreSQL a
    new file per table and index (about a third of a second here, DELETE a
    twentieth). The foreign keys are deferred, so the order does not matter.
    The tables are locked first, as TRUNCATE locks them: a runtime or tail
    server still writing (an event of a Worker this flush deletes) waits for
    the flush instead of committing a row that breaks its foreign keys."""
    if reset_sequences or allow_cascade or not tables:
        return _truncate_every_table(
            self,
            style,
            tables,
            reset_sequences=reset_sequences,
            allow_cascade=allow_cascade,
        )
    listed = ", ".join(self.quote_name(table) for table in tables)
    return ["SET CONSTRAINTS ALL DEFERRED;", f"LOCK TABLE {listed} IN SHARE MODE;"] + [
        # Table names from Django's own introspection, quoted.
        f"DELETE FROM {self.quote_name(table)};"  # noqa: S608
        for table in tables
    ]


_truncate_every_table = DatabaseOperations.sql_flush
_run_flush = DatabaseOperations.execute_sql_flush


def _run_flush_until_done(self, sql_list) -> None:
    """The flush, again if PostgreSQL broke a deadlock by cancelling it: a
    runtime still writing can hold a row the flush deletes (a runtime's
    record, locked FOR UPDATE) while it waits for a table the flush locked."""
    for attempt in range(5):
        try:
            return _run_flush(self, sql_list)
        except OperationalError as error:
            if attempt == 4 or not isinstance(error.__cause__, DeadlockDetected):
                raise


@pytest.fixture(autouse=True, scope="session")
def _flush_by_delete() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DatabaseOperations, "sql_flush", _delete_every_row)
        patch.setattr(DatabaseOperations, "execute_sql_flush", _run_flush_until_done)
        yield


@pytest.fixture(autouse=True)
def _fast_tier_spawns_nothing(request, monkeypatch) -> None:
    """In the fast tier a child process is a mistake: mark the test `slow`."""
    if not request.config.getoption("--fast"):
        return
    name = request.node.nodeid

    def refuse(self, *args, **kwargs):
        raise AssertionError(f"{name} starts a process: mark it slow")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path) -> Path:
    """Each test stores bytes in its own folder, so files can be counted."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def _fresh_blocklist() -> Iterator[None]:
    """Tests end by rolling back or truncating, which no signal reports: a
    blocklist snapshot read during one must not block the next."""
    yield
    forget_blocklist()


@pytest.fixture
def now() -> datetime:
    return timezone.now()


@pytest.fixture
def provision(now):
    """Make a pending temporary account the way the provisioning API does."""

    def make(**kwargs) -> ProvisionedAccount:
        kwargs.setdefault("now", now)
        kwargs.setdefault("origin_hash", "0" * 64)
        kwargs.setdefault("user_agent", "wrangler/4.164.0")
        return create_temporary_account(**kwargs)

    return make


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(
        username="ada", email="ada@example.com", password="correct horse battery"
    )


def run_concurrently[T](task: Callable[[], T], times: int) -> list[T]:
    """Run ``task`` in ``times`` threads released at once (a race, for real
    concurrent transactions); their results, in no particular order. Each
    thread closes the database connection it opened."""
    barrier = threading.Barrier(times)

    def contender() -> T:
        try:
            barrier.wait()
            return task()
        finally:
            connection.close()

    with ThreadPoolExecutor(times) as pool:
        return list(pool.map(lambda _: contender(), range(times)))


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for a child process that must see this test's database."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "claimportal.settings.test",
        "DATABASE_URL": (
            f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra)
    return env


def manage(
    *args: str, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess:
    """``manage.py`` in a fresh process with exactly ``env``, its output kept."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_celery_worker(
    queue: str, media_root: Path, *, concurrency: int = 0, **env: str
) -> subprocess.Popen:
    """A real Celery worker process on Redis, consuming ``queue``: one task at
    a time, or ``concurrency`` processes at once."""
    pool = ["--concurrency", str(concurrency)] if concurrency else ["--pool", "solo"]
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "claimportal",
            "worker",
            "--queues",
            queue,
            *pool,
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=subprocess_env(
            CLAIMPORTAL_CELERY_QUEUE=queue, MEDIA_ROOT=str(media_root), **env
        ),
    )


def start_celery_beat(queue: str, schedule: Path, **env: str) -> subprocess.Popen:
    """Real Celery beat sending the project's schedule to ``queue``, its state
    in the file ``schedule``."""
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "claimportal", "beat"),
            *("--schedule", str(schedule), "--loglevel", "WARNING"),
        ],
        cwd=ROOT,
        env=subprocess_env(CLAIMPORTAL_CELERY_QUEUE=queue, **env),
    )


def stop_process(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def celery_worker(transactional_db, settings) -> Iterator[str]:
    """A real Celery worker process on Redis, consuming a queue of its own.

    Yields the queue name; send tasks with ``apply_async(queue=...)``.
    """
    from accounts.tasks import check_database

    queue = f"test-{uuid.uuid4().hex[:10]}"
    process = start_celery_worker(queue, settings.MEDIA_ROOT)
    try:
        assert check_database.apply_async(queue=queue).get(timeout=60) is True
        yield queue
    finally:
        stop_process(process)
