"""Provisioning throughput against a trivial JSON view, and what checking a proof
of work costs the server against what making it costs the client.

claimportal runs under gunicorn as bin/run starts it, on PostgreSQL and Redis;
a few clients (threads), each on its own kept-alive loopback connection, send
one request at a time.
The trivial view is client/v4's catch-all, which answers every unknown path with
a small error envelope through the same middleware and API kit, touching
neither the database nor Redis. One provisioning is the challenge call plus the
previews call with a solution made beforehand (solving is the client's time, not
the server's); rate limits and the blocklist are checked as always, with limits
set high enough never to refuse.

The PoW figures use the production difficulty: the median time to solve (the
honest chain, in Python, whose hashing is as fast as wrangler's or faster),
against the median time to verify a solution (decode and spot checks), and to
redeem it (also the token's signature and the replay set in Redis).

    .venv/bin/python bench/bench_provisioning.py [--accounts 40] [--repeat 3]

Uses DATABASE_URL (PostgreSQL) and REDIS_URL; creates and drops a database of
its own.
"""

import argparse
import http.client
import json
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness import gunicorn_server, setup_django, throwaway_database

setup_django()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import CloudAccount  # noqa: E402
from accounts.services import pow  # noqa: E402
from claimportal.settings import base  # noqa: E402

PREVIEWS = "/client/v4/provisioning/previews"
TRIVIAL = "/client/v4/bench/trivial"
Call = tuple[str, str, bytes | None]


class Client:
    """Requests one after another on a kept-alive connection, as wrangler's."""

    def __init__(self, origin: str) -> None:
        self.connection = http.client.HTTPConnection(origin.split("//")[1], timeout=30)

    def call(self, method: str, path: str, body: bytes | None = None) -> bytes:
        headers = {"Content-Type": "application/json", "User-Agent": "undici"}
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        content = response.read()
        expected = 404 if path == TRIVIAL else 200
        if response.status != expected:
            raise RuntimeError(f"{method} {path}: {response.status} {content[:200]!r}")
        return content

    def close(self) -> None:
        self.connection.close()


def timed(origin: str, calls: list[Call], clients: int) -> tuple[float, list[bytes]]:
    """Wall seconds for ``clients`` concurrent clients to make the calls between
    them, each on its own connection, and the answers."""
    shares = [calls[i::clients] for i in range(clients)]
    connected = [Client(origin) for _ in shares]
    try:
        with ThreadPoolExecutor(clients) as pool:
            start = time.perf_counter()
            answers = list(
                pool.map(
                    lambda pair: [pair[0].call(*c) for c in pair[1]],
                    zip(connected, shares, strict=True),
                )
            )
            elapsed = time.perf_counter() - start
    finally:
        for client in connected:
            client.close()
    return elapsed, [answer for share in answers for answer in share]


def previews_body(challenge: dict) -> bytes:
    checkpoints = pow.solve(seed=challenge["seed"], k=challenge["k"], g=challenge["g"])
    return json.dumps(
        {
            "termsOfService": "https://www.cloudflare.com/terms/",
            "privacyPolicy": "https://www.cloudflare.com/privacypolicy/",
            "acceptTermsOfService": "yes",
            "challengeToken": challenge["challengeToken"],
            "solution": {"checkpoints": checkpoints},
        }
    ).encode()


def throughput_round(origin: str, count: int, clients: int) -> tuple[float, float]:
    """Seconds for ``count`` trivial requests and for ``count`` provisionings."""
    trivial: list[Call] = [("GET", TRIVIAL, None)] * count
    before, _ = timed(origin, trivial, clients)
    ask: list[Call] = [("POST", PREVIEWS + "/challenge", b"{}")] * count
    asking, answers = timed(origin, ask, clients)
    bodies = [previews_body(json.loads(a)["result"]) for a in answers]  # the client's
    creating, _ = timed(origin, [("POST", PREVIEWS, body) for body in bodies], clients)
    after, _ = timed(origin, trivial, clients)
    return (before + after) / 2, asking + creating


def pow_costs(rounds: int) -> tuple[float, float, float]:
    """Median seconds to solve, to verify and to redeem one solution."""
    k, g = base.CLAIMPORTAL_POW_K, base.CLAIMPORTAL_POW_G
    spot_checks = base.CLAIMPORTAL_POW_SPOT_CHECKS
    solves, verifies, redeems = [], [], []
    for _ in range(rounds):
        challenge = pow.issue_challenge(
            now=timezone.now(), k=k, g=g, ttl=settings.CLAIMPORTAL_POW_CHALLENGE_TTL
        )
        start = time.perf_counter()
        solution = pow.solve(seed=challenge.seed, k=k, g=g)
        solves.append(time.perf_counter() - start)
        seed = pow.decode_seed(challenge.seed)
        start = time.perf_counter()
        chain = pow.decode_checkpoints(solution, k=k)
        assert pow.verify_chain(seed=seed, chain=chain, g=g, samples=spot_checks)
        verifies.append(time.perf_counter() - start)
        start = time.perf_counter()
        pow.redeem_challenge(
            token=challenge.token,
            checkpoints=solution,
            now=timezone.now(),
            spot_checks=spot_checks,
        )
        redeems.append(time.perf_counter() - start)
    return tuple(statistics.median(t) for t in (solves, verifies, redeems))


def durable_commit(rounds: int) -> float:
    """Median seconds of the smallest durable write: one row, one commit. Every
    account costs at least this, and a trivial view nothing like it."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_commit (x integer)")
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_commit VALUES (1)")
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    # The server has production's settings (difficulty included), except for
    # limits that never refuse.
    os.environ["CLAIMPORTAL_RATE_LIMIT_PER_IP"] = str(10**9)
    os.environ["CLAIMPORTAL_RATE_LIMIT_GLOBAL"] = str(10**9)
    work = Path(tempfile.mkdtemp(prefix="bench-provisioning-"))
    with (
        throwaway_database(),
        gunicorn_server(work / "media", work / "access.log") as origin,
    ):
        throughput_round(origin, 8, args.clients)  # warm up: connections, caches
        rounds = [
            throughput_round(origin, args.accounts, args.clients)
            for _ in range(args.repeat)
        ]
        assert CloudAccount.objects.count() == 8 + args.accounts * args.repeat
        ping_s = statistics.median(r[0] for r in rounds) / args.accounts
        provision_s = statistics.median(r[1] for r in rounds) / args.accounts
        print(
            f"throughput, {args.accounts} each from {args.clients} clients, "
            f"median of {args.repeat} rounds "
            f"(k={base.CLAIMPORTAL_POW_K}, g={base.CLAIMPORTAL_POW_G}, "
            f"{base.CLAIMPORTAL_POW_SPOT_CHECKS} spot checks)"
        )
        print(f"  trivial JSON view      {1 / ping_s:8.1f} requests/s")
        print(f"  challenge + create     {1 / provision_s:8.1f} accounts/s")
        print(f"  ratio                  {ping_s / provision_s:8.3f}  (goal >= 0.25)")

        print(f"  one durable commit     {durable_commit(40) * 1000:8.2f} ms")

        solve, verify, redeem = pow_costs(10)
        print("proof of work, medians")
        print(f"  solve (client)         {solve * 1000:8.1f} ms")
        print(f"  verify (decode+checks) {verify * 1000:8.3f} ms")
        print(f"  redeem (+token, Redis) {redeem * 1000:8.3f} ms")
        print(
            f"  verify / solve         1/{solve / verify:.0f}  (goal <= 1/500); "
            f"redeem / solve 1/{solve / redeem:.0f}"
        )


if __name__ == "__main__":
    main()
