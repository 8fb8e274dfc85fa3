"""The edge (HAProxy) against no edge, in one run: the portal through the edge
against gunicorn directly, a trivial Worker through the edge against its
workerd alone, and both again while 2,000 slow clients are held.

* portal: GET /auth.md, one kept-alive connection each way, interleaved; the
  same gunicorn worker listens on its unix socket (the edge's way in) and on a
  loopback port (direct). One worker, not bin/run's two: a kept-alive
  connection stays with the worker that took it, so with two the ratio would
  compare two processes (it swung from 0.8x to 1.3x between runs) instead of
  measuring what the edge adds. Goal: p50 ratio <= 1.15.
* preview: the same Worker through the edge and on its own socket (the very
  process the edge forwards to, in its cell: what the edge alone adds). Goal:
  p50 ratio <= 1.4, p99 <= 1.6. Also printed: the same version in a plain
  workerd on a loopback port (no cell, no edge), which adds the cell's cost
  (bench_sandbox.py measures that alone).
* held: 2,000 connections (half to each host) that sent half a request head
  and stay; both p50s through the edge again. Goal: <= 2x the idle p50.

    .venv/bin/python bench/bench_edge.py [--requests 2000] [--held 2000]

Uses DATABASE_URL (PostgreSQL); creates and drops a database of its own.
Needs HAProxy and workerd (bin/install-node-tools, CLAIMPORTAL_NODE_TOOLS).
"""

import argparse
import http.client
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import (
    ROOT,
    free_port,
    interleaved,
    percentile,
    setup_django,
    throwaway_database,
)

setup_django()

from bench_preview import TRIVIAL, direct_workerd, timed  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.services.provisioning import create_temporary_account  # noqa: E402
from preview_runtime import process  # noqa: E402
from preview_runtime.unix import UnixHTTPConnection  # noqa: E402
from tests.conftest import subprocess_env  # noqa: E402
from tests.preview_runtime import Runtime, host_of, make_worker  # noqa: E402

PORTAL = "localhost"


def portal_timed(connection: http.client.HTTPConnection) -> float:
    start = time.perf_counter()
    connection.request("GET", "/auth.md", headers={"Host": PORTAL})
    response = connection.getresponse()
    response.read()
    elapsed = time.perf_counter() - start
    if response.status != 200:
        raise RuntimeError(f"the portal answered {response.status}")
    return elapsed


def pages_pool(socket_path: Path, port: int) -> subprocess.Popen:
    """The pages pool as bin/run starts it, with one worker (see above), also
    on a loopback port."""
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "gunicorn", "claimportal.wsgi:application"),
            *("--bind", f"unix:{socket_path}", "--bind", f"127.0.0.1:{port}"),
            *("--workers", "1", "--threads", "4", "--log-level", "warning"),
            "--no-control-socket",
        ],
        cwd=ROOT,
        env=subprocess_env(DJANGO_SETTINGS_MODULE="claimportal.settings.test"),
    )


def hold(port: int, hosts: list[str], count: int) -> list[socket.socket]:
    held = []
    for number in range(count):
        client = socket.create_connection(("127.0.0.1", port))
        host = hosts[number % len(hosts)]
        client.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nX-Slow: ".encode())
        held.append(client)
    return held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--held", type=int, default=2000)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.held + 1000), hard))

    with (
        tempfile.TemporaryDirectory(prefix="bench-edge-") as scratch,
        throwaway_database("bench_edge"),
    ):
        state = Path(scratch)
        state.chmod(0o755)
        (state / "media").mkdir()
        direct_port = free_port()
        pool = pages_pool(state / "pages.sock", direct_port)
        runtime = Runtime(state, state / "media")
        runtime.start(CLAIMPORTAL_EDGE_PORTAL=f"unix:{state / 'pages.sock'}")
        alone_process = None
        held: list[socket.socket] = []
        try:
            account = create_temporary_account(now=timezone.now()).account
            script = make_worker(account, "bench", TRIVIAL)
            assert runtime.apply(script)["state"] == "running", runtime.log()
            alone_process, alone_port, _sockets = direct_workerd(
                script.current_version, state / "direct"
            )
            host = host_of(script)
            open_ = lambda port: http.client.HTTPConnection(  # noqa: E731
                "127.0.0.1", port, timeout=30
            )
            deadline = time.monotonic() + 60
            while True:
                try:
                    portal_timed(open_(direct_port))
                    portal_timed(open_(runtime.port))
                    break
                except (OSError, RuntimeError):
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            portal_edge, portal_direct = open_(runtime.port), open_(direct_port)
            preview_edge, preview_alone = open_(runtime.port), open_(alone_port)
            own_socket = UnixHTTPConnection(
                runtime.worker_dir(script) / "http.sock", timeout=30
            )
            pairs = (
                (portal_timed, portal_edge),
                (portal_timed, portal_direct),
                (timed, preview_edge, host),
                (timed, own_socket, host),
                (timed, preview_alone, host),
            )
            interleaved(200, *pairs)  # warm up every path
            idle = interleaved(args.requests, *pairs)
            held = hold(runtime.port, [PORTAL, host], args.held)
            time.sleep(1)
            loaded = interleaved(args.requests, *pairs)  # the same mix again
        finally:
            for client in held:
                client.close()
            if alone_process is not None:
                process.stop(alone_process, grace=0)
            runtime.stop()
            pool.terminate()
            pool.wait(timeout=30)

    def ms(values: list[float]) -> str:
        return (
            f"p50 {statistics.median(values) * 1000:6.3f} ms"
            f"   p99 {percentile(values, 0.99) * 1000:6.3f} ms"
        )

    def ratio(a: list[float], b: list[float], at: float) -> float:
        return percentile(a, at) / percentile(b, at)

    portal_e, portal_d, preview_e, preview_o, preview_a = idle
    names = (
        "portal through the edge  ",
        "portal, gunicorn directly",
        "preview through the edge ",
        "preview, its own socket  ",
        "preview, plain workerd   ",
    )
    print(f"{args.requests} requests each, one kept-alive connection per path")
    for name, values in zip(names, idle, strict=True):
        print(f"  {name} {ms(values)}")
    print(f"  with {args.held} slow connections held:")
    for name, values in zip(names, loaded, strict=True):
        print(f"  {name} {ms(values)}")
    print(
        f"portal edge / direct: p50 {ratio(portal_e, portal_d, 0.5):.2f}x "
        "(goal <= 1.15x)"
    )
    print(
        f"preview edge / own socket: p50 {ratio(preview_e, preview_o, 0.5):.2f}x "
        f"(goal <= 1.4x), p99 {ratio(preview_e, preview_o, 0.99):.2f}x "
        "(goal <= 1.6x)"
    )
    print(
        f"preview edge / plain workerd (edge and cell): p50 "
        f"{ratio(preview_e, preview_a, 0.5):.2f}x, "
        f"p99 {ratio(preview_e, preview_a, 0.99):.2f}x"
    )
    print(
        f"held / idle p50: portal {ratio(loaded[0], portal_e, 0.5):.2f}x, "
        f"preview {ratio(loaded[2], preview_e, 0.5):.2f}x (goal <= 2x); "
        f"while held, edge / no edge: portal {ratio(loaded[0], loaded[1], 0.5):.2f}x,"
        f" preview {ratio(loaded[2], loaded[3], 0.5):.2f}x (own socket)"
    )


if __name__ == "__main__":
    main()
