"""What the bench scripts share: Django set up on the test settings, a database
of their own, claimportal under gunicorn as bin/run starts it, interleaved
samples and percentiles.

A bench calls ``setup_django()`` before importing anything of the project.
"""

import gc
import os
import random
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "claimportal.settings.test")
    # Cache keys of this run alone (the server it starts shares them): what a
    # bench counts, such as rate limits, must not reach tests or other runs.
    os.environ["CLAIMPORTAL_CACHE_PREFIX"] = f"bench-{uuid.uuid4().hex[:12]}"

    import django

    django.setup()


@contextmanager
def throwaway_database(name: str | None = None) -> Iterator[None]:
    """A fresh, migrated database (``name``, else ``bench_<DATABASE_URL's>``)
    for the length of the block, dropped afterwards."""
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL server.")
    original = connection.settings_dict["NAME"]
    connection.settings_dict["TEST"]["NAME"] = name or f"bench_{original}"
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        yield
    finally:
        connection.creation.destroy_test_db(original, verbosity=0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn_server(media: Path, log: Path) -> Iterator[str]:
    """claimportal under gunicorn as bin/run starts it, on the database and
    the cache of this process, for the length of the block; yields its origin.
    The access log has one ``METHOD path?query status millisecondsms`` line
    per request."""
    from django.conf import settings

    from tests.conftest import subprocess_env

    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    env = subprocess_env(
        DJANGO_SETTINGS_MODULE="claimportal.settings.dev",
        DEBUG="false",
        REDIS_URL=settings.REDIS_URL,
        # The same keys as this process, so what it changes, the server sees.
        CLAIMPORTAL_CACHE_PREFIX=settings.CACHES["default"]["KEY_PREFIX"],
        MEDIA_ROOT=str(media),
        PUBLIC_BASE_URL=origin,
        LOG_LEVEL="WARNING",
    )
    server = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "claimportal.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "4",
            "--no-control-socket",
            "--access-logfile",
            str(log),
            "--access-logformat",
            "%(m)s %(U)s?%(q)s %(s)s %(M)sms",
        ],
        cwd=ROOT,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_answering(origin)
        yield origin
    finally:
        server.terminate()
        server.wait(timeout=30)


def wait_until_answering(origin: str) -> None:
    for _ in range(100):
        try:
            urllib.request.urlopen(f"{origin}/client/v4/accounts", timeout=1)  # noqa: S310
        except urllib.error.HTTPError:
            return  # 401: it answers
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("claimportal did not start")


def interleaved(
    rounds: int, *calls: tuple[Callable[..., float], ...]
) -> list[list[float]]:
    """``rounds`` rounds of one sample of each ``(call, *args)``, in a new
    order each round (seeded, so runs compare): a path that always came right
    after the same other one would pay for what that one leaves running (a
    Worker's request leaves its trace to be stored), and drift would favour
    whichever came first."""
    order = random.Random(0)
    samples: list[list[float]] = [[] for _ in calls]
    # This process's garbage collections would land on whichever sample was
    # running: a pause of the client's, not of what is measured.
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            for index in order.sample(range(len(calls)), len(calls)):
                call, *args = calls[index]
                samples[index].append(call(*args))
    finally:
        gc.enable()
    return samples


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run_test(test: str, *, env: dict[str, str], show: str) -> int:
    """Run one test module with ``env`` added; print its lines containing
    ``show`` (all of its output if it fails) and how long it took."""
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", test, "-q", "-s", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    lines = completed.stdout.splitlines()
    print("\n".join(line for line in lines if show in line))
    if completed.returncode:
        print(completed.stdout[-5000:], completed.stderr[-2000:], sep="\n")
    print(f"{test}: {time.perf_counter() - started:.0f} s")
    return completed.returncode
