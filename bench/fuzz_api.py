"""The long form of the API fuzzing test: many more requests per operation.

    .venv/bin/python bench/fuzz_api.py [--examples 500]

Runs tests/test_fuzz_api.py with CLAIMPORTAL_FUZZ_EXAMPLES set (same fixed
seed, so a failure reproduces), on DATABASE_URL's PostgreSQL and Redis, and
prints the count of requests and the statuses seen.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
