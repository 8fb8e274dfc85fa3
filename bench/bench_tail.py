"""Live logs: how long a ``console.log`` in a request takes to reach a tail.

Starts the real preview runtime and the tail server (``manage.py
tail_server``) on a database of their own, deploys a Worker from rows that
logs a per-request token, opens a tail and connects to its WebSocket as
wrangler does (``trace-v1``), then sends requests one at a time and times,
for each, from sending the request to receiving the event holding its token.
The baseline, measured in the same run, is the request's own round trip.

Prints p50 and p95 of both and the tail's p95 in seconds (goal: under 1 s).

    .venv/bin/python bench/bench_tail.py [--requests 200]

Uses DATABASE_URL (PostgreSQL); creates and drops a database of its own.
Needs workerd (bin/install-node-tools, CLAIMPORTAL_NODE_TOOLS).
"""

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from harness import percentile, setup_django, throwaway_database

setup_django()

from django.utils import timezone  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from accounts.services import tails  # noqa: E402
from accounts.services.provisioning import create_temporary_account  # noqa: E402
from tests.preview_runtime import Runtime, host_of, make_worker  # noqa: E402
from tests.tail_server import TailServer  # noqa: E402

LOGGING = """
export default {
  fetch(request) {
    console.log("token", new URL(request.url).searchParams.get("t"));
    return new Response("ok");
  },
};
"""


async def measure(runtime: Runtime, host: str, url: str, requests: int):
    tail_ms, request_ms = [], []
    async with connect(url, subprotocols=["trace-v1"]) as websocket:
        await websocket.send(json.dumps({"debug": False}))
        for n in range(requests + 20):  # the first 20 warm up
            token = f"r{n}"
            began = time.perf_counter()
            answer = await asyncio.to_thread(runtime.get, host, f"/?t={token}")
            answered = time.perf_counter()
            assert answer.status == 200, answer.status
            while True:
                event = json.loads(await asyncio.wait_for(websocket.recv(), 30))
                if event["logs"] and event["logs"][0]["message"] == ["token", token]:
                    break
            if n >= 20:
                tail_ms.append((time.perf_counter() - began) * 1000)
                request_ms.append((answered - began) * 1000)
    return tail_ms, request_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(
            prefix="bench-tail-", ignore_cleanup_errors=True
        ) as scratch,
        throwaway_database("bench_tail"),
    ):
        state = Path(scratch)
        state.chmod(0o755)
        (state / "media").mkdir()
        runtime = Runtime(state, state / "media")
        runtime.start()
        server = TailServer(state / "tail.log")
        try:
            now = timezone.now()
            account = create_temporary_account(now=now).account
            script = make_worker(account, "logger", LOGGING)
            assert runtime.apply(script)["state"] == "running"
            created = tails.create_tail(
                account=account,
                script_name="logger",
                filters=[],
                client_ip="127.0.0.1",
                now=now,
            )
            path = created.url.split("/tail/", 1)[1]
            url = f"{server.base_url}/tail/{path}"
            tail_ms, request_ms = asyncio.run(
                measure(runtime, host_of(script), url, args.requests)
            )
        finally:
            server.stop()
            runtime.stop()
    p50, p95 = percentile(tail_ms, 0.5), percentile(tail_ms, 0.95)
    r50, r95 = percentile(request_ms, 0.5), percentile(request_ms, 0.95)
    print(f"requests: {args.requests}, one at a time")
    print(f"request round trip (baseline): p50 {r50:.1f} ms, p95 {r95:.1f} ms")
    print(f"console.log to the tail:       p50 {p50:.1f} ms, p95 {p95:.1f} ms")
    print(f"ratio to the round trip:       p50 {p50 / r50:.1f}x, p95 {p95 / r95:.1f}x")
    print(f"goal p95 under 1 s: {'met' if p95 < 1000 else 'NOT met'}")


if __name__ == "__main__":
    main()
