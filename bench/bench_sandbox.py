"""What the preview sandbox costs: cold start, latency and memory of Workers in
cells (own UID, mount and network namespaces, cgroup limits) against the same
Workers run plainly, in the same run.

Starts two real preview runtimes on one database of its own, one with
CLAIMPORTAL_PREVIEW_SANDBOX=on and one with it off, deploys trivial Workers
from rows and applies each to both, alternating, then measures:

* cold start: spawn to listening, and deploy applied to the first answer
  (goal: sandboxed / plain <= 1.5x);
* latency of one trivial Worker through each runtime's edge, interleaved (a
  new order each round), one kept-alive connection each (goal: p50 ratio
  <= 1.1x);
* memory of each Worker's workerd (PSS and private bytes; and what its cgroup
  counts).

    .venv/bin/python bench/bench_sandbox.py [--requests 2000] [--workers 10]

Needs root (the sandbox), workerd (bin/install-node-tools,
CLAIMPORTAL_NODE_TOOLS) and DATABASE_URL (PostgreSQL).
"""

import argparse
import http.client
import statistics
import tempfile
import time
from pathlib import Path

from harness import interleaved, percentile, setup_django, throwaway_database

setup_django()

from bench_preview import memory_kib, timed, workerd_of  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.services.provisioning import create_temporary_account  # noqa: E402
from tests.preview_runtime import Runtime, host_of, make_worker  # noqa: E402

TRIVIAL = 'export default { fetch() { return new Response("ok"); } };\n'
MODES = {"sandboxed": "on", "plain": "off"}


def cgroup_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _number, names, path = line.split(":", 2)
        if "memory" in names.split(","):
            stat = Path("/sys/fs/cgroup/memory") / path.lstrip("/") / "memory.stat"
            for entry in stat.read_text().splitlines():
                key, value = entry.split()
                if key == "total_rss":
                    return int(value) // 1024
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=10)
    args = parser.parse_args()

    startup = {mode: [] for mode in MODES}
    first = {mode: [] for mode in MODES}
    memory = {mode: [] for mode in MODES}
    latency = {mode: [] for mode in MODES}
    cgroup_kib = []
    with (
        tempfile.TemporaryDirectory(
            prefix="bench-sb-", ignore_cleanup_errors=True
        ) as scratch,
        throwaway_database("bench_sandbox"),
    ):
        runtimes = {}
        try:
            for mode, setting in MODES.items():
                state = Path(scratch) / mode
                (state / "media").mkdir(parents=True)
                runtimes[mode] = Runtime(state, state / "media")
                runtimes[mode].start(
                    CLAIMPORTAL_PREVIEW_SANDBOX=setting,
                    CLAIMPORTAL_PREVIEW_MAX_PER_ACCOUNT=str(args.workers + 1),
                )
            assert runtimes["sandboxed"].command("GET", "/status")["sandbox"]
            assert not runtimes["plain"].command("GET", "/status")["sandbox"]
            account = create_temporary_account(now=timezone.now()).account
            scripts = []
            for number in range(args.workers):
                script = make_worker(account, f"w{number}", TRIVIAL)
                order = list(MODES) if number % 2 == 0 else list(MODES)[::-1]
                for mode in order:
                    runtime = runtimes[mode]
                    began = time.perf_counter()
                    applied = runtime.apply(script)
                    answer = runtime.get(host_of(script))
                    first[mode].append((time.perf_counter() - began) * 1000)
                    assert applied["state"] == "running" and answer.text == "ok"
                    startup[mode].append(applied["startup_ms"])
                    workerd = workerd_of(applied["pid"])
                    memory[mode].append(memory_kib(workerd))
                    if mode == "sandboxed":
                        cgroup_kib.append(cgroup_rss_kib(applied["pid"]))
                scripts.append(script)

            host = host_of(scripts[0])
            connections = {
                mode: http.client.HTTPConnection("127.0.0.1", runtime.port, timeout=30)
                for mode, runtime in runtimes.items()
            }
            pairs = [(timed, connections[mode], host) for mode in MODES]
            interleaved(200, *pairs)  # warm up both
            for mode, samples in zip(
                MODES, interleaved(args.requests, *pairs), strict=True
            ):
                latency[mode] = samples
        finally:
            for runtime in runtimes.values():
                runtime.stop()

    def p50(values: list[float]) -> float:
        return statistics.median(values)

    print(f"{args.workers} trivial Workers, each in both runtimes")
    for mode in MODES:
        print(
            f"  {mode:<9} cold start: spawn to listening p50 {p50(startup[mode]):.0f}"
            f" ms, deploy to first answer p50 {p50(first[mode]):.0f} ms;"
            f" latency p50 {p50(latency[mode]) * 1000:.3f} ms,"
            f" p99 {percentile(latency[mode], 0.99) * 1000:.3f} ms"
        )
    print(
        "  sandboxed / plain: cold start (to listening) "
        f"{p50(startup['sandboxed']) / p50(startup['plain']):.2f}x, "
        f"deploy to first answer {p50(first['sandboxed']) / p50(first['plain']):.2f}x"
        " (goal <= 1.5x); "
        f"p50 {p50(latency['sandboxed']) / p50(latency['plain']):.2f}x (goal <= 1.1x), "
        f"p99 {percentile(latency['sandboxed'], 0.99) / percentile(latency['plain'], 0.99):.2f}x"  # noqa: E501
    )
    for mode in MODES:
        pss = statistics.mean(m["pss"] for m in memory[mode]) / 1024
        private = statistics.mean(m["private"] for m in memory[mode]) / 1024
        print(
            f"  memory per Worker, {mode}: PSS {pss:.1f} MiB, private {private:.1f} MiB"
        )
    print(
        "  what a Worker's cgroup counts (anonymous memory): "
        f"{statistics.mean(cgroup_kib) / 1024:.1f} MiB"
    )


if __name__ == "__main__":
    main()
