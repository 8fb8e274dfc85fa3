"""The long form of the API fuzzing test: many more requests per operation.

    .venv/bin/python bench/fuzz_api.py [--examples 500]

Runs tests/test_fuzz_api.py with CLAIMPORTAL_FUZZ_EXAMPLES set (same fixed
seed, so a failure reproduces), on DATABASE_URL's PostgreSQL and Redis, and
prints the count of requests, the statuses seen and the rate.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=500, help="per operation")
    args = parser.parse_args()
    started = time.perf_counter()
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/test_fuzz_api.py",
            "-q",
            "-s",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:logging",
        ],
        cwd=ROOT,
        env={**os.environ, "CLAIMPORTAL_FUZZ_EXAMPLES": str(args.examples)},
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    lines = [line for line in completed.stdout.splitlines() if "fuzzed" in line]
    print("\n".join(lines) or completed.stdout[-3000:])
    if completed.returncode:
        print(completed.stdout[-3000:], completed.stderr[-2000:], sep="\n")
    print(f"{args.examples} examples per operation in {elapsed:.0f} s")
    return completed.returncode


if __name__ == "__main__":
    sys.exit(main())
