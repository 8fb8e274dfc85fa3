"""bin/demo end to end, both agents against the same server in the same run:
the Python client (``--via python``) against the real wrangler
(``--via wrangler``, the baseline), from start to the printed claim URL.

Each run creates an account with the default proof of work, deploys
examples/agent-demo (Worker, assets, KV, D1, a Durable Object, a queue) and
seeds D1. claimportal runs under gunicorn as bin/run starts it.

Prints the median wall time of each path and their ratio.

    .venv/bin/python bench/bench_demo.py [--rounds 3]

Uses DATABASE_URL (PostgreSQL) and REDIS_URL; creates and drops a database of
its own. Needs bin/install-node-tools for the wrangler path.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from harness import ROOT, gunicorn_server, setup_django, throwaway_database

setup_django()

from tests.e2e.conftest import node_tools_dir  # noqa: E402


def timed_demo(origin: str, via: str, tools: Path) -> float:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(ROOT)),
        "CLAIMPORTAL_URL": origin,
        "CLAIMPORTAL_NODE_TOOLS": str(tools),
    }
    start = time.perf_counter()
    run = subprocess.run(
        [str(ROOT / "bin" / "demo"), "--via", via],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    elapsed = time.perf_counter() - start
    if run.returncode != 0 or "Claim URL:" not in run.stdout:
        raise RuntimeError(run.stdout + run.stderr)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tools = node_tools_dir()

    tmp = Path(tempfile.mkdtemp(prefix="bench-demo-"))
    times: dict[str, list[float]] = {"python": [], "wrangler": []}
    try:
        with (
            throwaway_database("bench_demo"),
            gunicorn_server(tmp / "media", tmp / "access.log") as origin,
        ):
            for via in times:  # warm-up: imports, caches, node's compile cache
                timed_demo(origin, via, tools)
            for _ in range(args.rounds):
                for via, found in times.items():
                    found.append(timed_demo(origin, via, tools))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    python = statistics.median(times["python"])
    wrangler = statistics.median(times["wrangler"])
    print(f"bin/demo to the printed claim URL, median of {args.rounds} rounds")
    print(f"  --via wrangler (baseline)  {wrangler:6.2f} s")
    print(
        f"  --via python               {python:6.2f} s   ratio {python / wrangler:4.2f}"
    )


if __name__ == "__main__":
    main()
