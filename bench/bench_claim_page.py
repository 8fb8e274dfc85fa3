"""The claim page with 1 and with 100 resources, against a trivial template view.

claimportal runs under gunicorn as bin/run starts it, on PostgreSQL and Redis;
one client on a kept-alive loopback connection sends one request at a time, with
the session cookie the claim link gave it. The trivial view is the home page: a
short template in the same base layout, through the same middleware and session,
with no query of its own. Requests to the pages are interleaved, in a new order
each round, so drift hits all of them alike. The claim page is what a person
sees before signing in: inventory, countdown and QR code.

Nothing of the page is kept between views: each one reads what the account
holds and renders it, as the first view after a deploy does. To show that,
two figures for the sizes that hold a KV namespace: the page as a visitor gets
it again and again, and the page right after a write it shows (a key put).

Prints each page's median (p50) and its ratio to the trivial view (goal: the
100-resource page at most 3x).

    .venv/bin/python bench/bench_claim_page.py [--requests 200]

Uses DATABASE_URL (PostgreSQL) and REDIS_URL; creates and drops a database of
its own.
"""

import argparse
import functools
import http.client
import statistics
import subprocess
import sys
import tempfile
import time
from http.cookies import SimpleCookie
from pathlib import Path

from harness import (
    ROOT,
    gunicorn_server,
    interleaved,
    setup_django,
    throwaway_database,
)

setup_django()

from django.utils import timezone  # noqa: E402

from accounts.models import KVNamespace  # noqa: E402
from accounts.selectors import inventory  # noqa: E402
from accounts.services import kv  # noqa: E402
from accounts.services.provisioning import create_temporary_account  # noqa: E402
from tests.claim_builders import add_resources  # noqa: E402
from tests.conftest import subprocess_env  # noqa: E402

SIZES = (1, 100)


class Browser:
    """One kept-alive connection and the cookies it was given."""

    def __init__(self, origin: str) -> None:
        self.connection = http.client.HTTPConnection(origin.split("//")[1], timeout=30)
        self.cookies = SimpleCookie()

    def get(self, path: str) -> tuple[int, bytes]:
        cookie = "; ".join(f"{k}={m.value}" for k, m in self.cookies.items())
        try:
            self.connection.request("GET", path, headers={"Cookie": cookie})
            response = self.connection.getresponse()
        except (http.client.RemoteDisconnected, ConnectionError):
            # gunicorn closes a connection idle for 2 s (a slow setup): reopen.
            self.connection.close()
            self.connection.request("GET", path, headers={"Cookie": cookie})
            response = self.connection.getresponse()
        body = response.read()
        for header in response.headers.get_all("Set-Cookie") or []:
            self.cookies.load(header)
        return response.status, body

    def timed(self, path: str, expect: bytes) -> float:
        start = time.perf_counter()
        status, body = self.get(path)
        elapsed = time.perf_counter() - start
        if status != 200 or expect not in body:
            raise RuntimeError(f"GET {path} answered {status}")
        return elapsed


def measure(origin: str, requests: int) -> dict:
    """Seconds per request of each page, interleaved, after a warm-up."""
    browsers, namespaces = {}, {}
    for size in SIZES:
        made = create_temporary_account(now=timezone.now(), user_agent="bench")
        add_resources(made.account, size)
        assert inventory(account=made.account).resource_count == size
        browser = Browser(origin)
        status, _ = browser.get(f"/claim/{made.claim_key}/")
        assert status == 302, status
        browsers[size] = browser
        namespaces[size] = KVNamespace.objects.filter(account=made.account).first()
    trivial = browsers[SIZES[0]]  # same session cookie, so the same session load
    writes = iter(range(10**9))

    def timed(size: int, *, written: bool) -> float:
        if written:
            kv.put_value(
                namespace=namespaces[size],
                key=f"bench-{next(writes)}",
                value=b"v",
                now=timezone.now(),
            )
        return browsers[size].timed("/claim/", b"What will be yours")

    cases = {size: [False, True] if namespaces[size] else [False] for size in SIZES}
    calls = {
        "trivial": (trivial.timed, "/", b"claimportal"),
        **{
            (s, w): (functools.partial(timed, written=w), s)
            for s in SIZES
            for w in cases[s]
        },
    }
    interleaved(20, *calls.values())  # warm up workers, connections and templates
    return dict(zip(calls, interleaved(requests, *calls.values()), strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    with throwaway_database("bench_claim_page"):
        tmp = Path(tempfile.mkdtemp(prefix="bench-claim-"))
        # Pages name their static files through the manifest, as under bin/run.
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--no-input", "-v", "0"],
            cwd=ROOT,
            env=subprocess_env(DJANGO_SETTINGS_MODULE="claimportal.settings.dev"),
            check=True,
        )
        with gunicorn_server(tmp / "media", tmp / "access.log") as origin:
            times = measure(origin, args.requests)

    base = statistics.median(times["trivial"])
    print(f"claim page p50 over {args.requests} requests each (gunicorn, PostgreSQL)")
    print(
        f"  trivial template view                       {base * 1000:7.2f} ms   1.00x"
    )
    for size, written in [key for key in times if key != "trivial"]:
        p50 = statistics.median(times[size, written])
        label = f"claim page, {size} resource{'s' if size > 1 else ''}, "
        label += "after a write" if written else "again"
        print(f"  {label:<44}{p50 * 1000:7.2f} ms   {p50 / base:.2f}x")
    for written in (False, True):
        if (SIZES[-1], written) in times:
            ratio = statistics.median(times[SIZES[-1], written]) / base
            case = "after a write" if written else "again"
            print(f"goal: {SIZES[-1]} resources, {case}, <= 3x trivial: {ratio:.2f}x")


if __name__ == "__main__":
    main()
