"""Live previews: cold start, latency through the edge, memory per Worker.

Starts the real preview runtime (``manage.py preview_runtime``, sandboxed where
the host allows) on a database of its own, deploys trivial Workers from rows,
and measures:

* cold start: spawn to listening (what the runtime reports) and deploy to the
  first answer through the edge;
* latency of one trivial Worker through the edge, against the same Worker
  served by its own workerd on a loopback TCP port with no edge, measured in
  the same run, interleaved, one kept-alive connection each (goal: p50 ratio
  <= 1.5);
* memory of each Worker's process (RSS, PSS and private bytes).

    .venv/bin/python bench/bench_preview.py [--requests 2000] [--workers 20]

Uses DATABASE_URL (PostgreSQL); creates and drops a database of its own.
Needs workerd (bin/install-node-tools, CLAIMPORTAL_NODE_TOOLS).
"""

import argparse
import http.client
import socket
import statistics
import tempfile
import time
from pathlib import Path

from harness import percentile, setup_django, throwaway_database

setup_django()

from django.utils import timezone  # noqa: E402

from accounts.services.provisioning import create_temporary_account  # noqa: E402
from preview_runtime import process  # noqa: E402
from preview_runtime.render import WorkerPaths  # noqa: E402
from preview_runtime.services import runtime_settings  # noqa: E402
from preview_runtime.services.specs import write_version  # noqa: E402
from tests.preview_runtime import Runtime, host_of, make_worker  # noqa: E402

TRIVIAL = 'export default { fetch() { return new Response("ok"); } };\n'


def timed(connection: http.client.HTTPConnection, host: str) -> float:
    start = time.perf_counter()
    connection.request("GET", "/", headers={"Host": host})
    response = connection.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - start
    if response.status != 200 or body != b"ok":
        raise RuntimeError(f"answered {response.status} {body[:80]!r}")
    return elapsed


def workerd_of(pid: int) -> int:
    """workerd itself: the process we hold, or the one below it in its cell."""
    while Path(f"/proc/{pid}/comm").read_text().strip() != "workerd":
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pid = int(children[0])
    return pid


def memory_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0])
    private = fields["Private_Clean"] + fields["Private_Dirty"]
    return {"rss": fields["Rss"], "pss": fields["Pss"], "private": private}


def direct_workerd(version, scratch: Path) -> tuple[object, int, list]:
    """The same version in a workerd of its own on a TCP port: no edge."""
    config = write_version(
        version=version,
        directory=scratch,
        paths=WorkerPaths(
            control_socket=str(scratch / "control.sock"),
            durable_objects=str(scratch / "do"),
            assets=str(scratch / "assets"),
        ),
        heap_mb=128,
    )
    listener = socket.create_server(("127.0.0.1", 0))
    admin = process.unix_listener(scratch / "admin.sock")
    started = process.spawn(
        config=config,
        sockets={"http": listener, "admin": admin},
        log=scratch / "log",
        cell=None,
        timeout=30,
        binary=runtime_settings.workerd_binary(),
    )
    return started.process, listener.getsockname()[1], [listener, admin]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=20)
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(
            prefix="bench-pv-", ignore_cleanup_errors=True
        ) as scratch,
        throwaway_database("bench_preview"),
    ):
        state = Path(scratch)
        state.chmod(0o755)
        (state / "media").mkdir()
        runtime = Runtime(state, state / "media")
        runtime.start(CLAIMPORTAL_PREVIEW_MAX_PER_ACCOUNT=str(args.workers + 1))
        direct = None
        try:
            account = create_temporary_account(now=timezone.now()).account
            startup_ms, first_answer_ms, pids = [], [], []
            scripts = []
            for number in range(args.workers):
                script = make_worker(account, f"w{number}", TRIVIAL)
                began = time.perf_counter()
                applied = runtime.apply(script)
                answer = runtime.get(host_of(script))
                first_answer_ms.append((time.perf_counter() - began) * 1000)
                assert applied["state"] == "running" and answer.text == "ok", applied
                startup_ms.append(applied["startup_ms"])
                pids.append(applied["pid"])
                scripts.append(script)
            memory = [memory_kib(workerd_of(pid)) for pid in pids]
            sandboxed = runtime.command("GET", "/status")["sandbox"]

            script = scripts[0]
            direct, port, _sockets = direct_workerd(
                script.current_version, state / "direct"
            )
            edge = http.client.HTTPConnection("127.0.0.1", runtime.port, timeout=30)
            alone = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            host = host_of(script)
            for _ in range(200):  # warm up both paths
                timed(edge, host)
                timed(alone, host)
            via_edge, without = [], []
            for _ in range(args.requests):
                via_edge.append(timed(edge, host))
                without.append(timed(alone, host))
        finally:
            if direct is not None:
                process.stop(direct, grace=0)
            runtime.stop()

    def ms(value: float) -> str:
        return f"{value * 1000:6.3f} ms"

    print(f"preview runtime ({'sandboxed' if sandboxed else 'not sandboxed'})")
    print(
        f"  cold start, spawn to listening: p50 {statistics.median(startup_ms):.0f} ms,"
        f" max {max(startup_ms)} ms over {args.workers} Workers"
    )
    print(
        "  cold start, deploy applied to first answer via the edge: p50 "
        f"{statistics.median(first_answer_ms):.0f} ms"
    )
    print(f"latency of a trivial Worker over {args.requests} requests (kept alive)")
    for label, values in (("workerd alone", without), ("through the edge", via_edge)):
        print(
            f"  {label:<18} p50 {ms(statistics.median(values))}"
            f"   p99 {ms(percentile(values, 0.99))}"
        )
    p50_ratio = statistics.median(via_edge) / statistics.median(without)
    p99_ratio = percentile(via_edge, 0.99) / percentile(without, 0.99)
    print(
        f"  edge / alone: p50 {p50_ratio:.2f}x, p99 {p99_ratio:.2f}x (goal p50 <= 1.5x)"
    )
    mean = {k: statistics.mean(m[k] for m in memory) / 1024 for k in memory[0]}
    print(
        f"memory per active Worker ({args.workers} running): RSS {mean['rss']:.1f} MiB,"
        f" PSS {mean['pss']:.1f} MiB, private {mean['private']:.1f} MiB"
    )


if __name__ == "__main__":
    main()
