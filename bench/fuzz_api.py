"""The long form of the API fuzzing test: many more requests per operation.

    .venv/bin/python bench/fuzz_api.py [--examples 500]

Runs tests/test_fuzz_api.py with CLAIMPORTAL_FUZZ_EXAMPLES set (same fixed
seed, so a failure reproduces), on DATABASE_URL's PostgreSQL and Redis, and
prints the count of requests and the statuses seen.
"""

import argparse
import sys

from harness import run_test


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=500, help="per operation")
    args = parser.parse_args()
    return run_test(
        "tests/test_fuzz_api.py",
        env={"CLAIMPORTAL_FUZZ_EXAMPLES": str(args.examples)},
        show="fuzzed",
    )


if __name__ == "__main__":
    sys.exit(main())
