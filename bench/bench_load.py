"""The long form of the load test: the edge (HAProxy) in front of gunicorn's two
pools, PostgreSQL and Redis on loopback, clients mixing provisioning, deploys,
claim page views and racing claims, reaching the service as users do.

    .venv/bin/python bench/bench_load.py [--seconds 60] [--clients 200]

Runs tests/test_load.py with CLAIMPORTAL_LOAD_SECONDS and _CLIENTS set, on
DATABASE_URL's PostgreSQL and Redis. Prints p50/p99 per kind of request and
each p99 as a ratio to the baseline's (GET /auth.md, which touches neither
database nor cache) measured in the same run; the test itself asserts no
5xx, no dropped connection, only intended 429s and no double claim.
"""

import argparse
import sys

from harness import run_test


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--clients", type=int, default=200)
    args = parser.parse_args()
    return run_test(
        "tests/test_load.py",
        env={
            "CLAIMPORTAL_LOAD_SECONDS": str(args.seconds),
            "CLAIMPORTAL_LOAD_CLIENTS": str(args.clients),
        },
        show="p99",
    )


if __name__ == "__main__":
    sys.exit(main())
