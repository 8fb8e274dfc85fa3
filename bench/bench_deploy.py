"""`wrangler deploy --temporary` of the full example Worker: claimportal against a
minimal stub of the same API, in the same run.

The stub is a stdlib HTTP server that answers every call of the deploy with a
canned envelope and keeps only what the next call needs; claimportal runs under
gunicorn as bin/run starts it. Each round deploys the full Worker (KV, D1, a
Durable Object, a queue producer and consumer, vars, a secret, a cron, assets)
into a fresh account, then redeploys it unchanged (the versions API). Accounts
are made directly, without proof of work, so only the deploy is timed.

Prints the median wall times, their ratio (goal: at most 1.3) and the
server-side time of each script upload request (gunicorn's request time).

    .venv/bin/python bench/bench_deploy.py [--rounds 3]

Uses DATABASE_URL (PostgreSQL) and REDIS_URL; creates and drops a database of
its own.
"""

import argparse
import json
import re
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from harness import ROOT, gunicorn_server, setup_django, throwaway_database

setup_django()

from django.utils import timezone  # noqa: E402

from accounts.api.serializers import iso  # noqa: E402
from accounts.services.multipart import parse_form  # noqa: E402
from accounts.services.provisioning import create_temporary_account  # noqa: E402
from tests.e2e.conftest import Wrangler  # noqa: E402

PROJECT = ROOT / "tests" / "e2e" / "projects" / "full"
UPLOAD = re.compile(
    r"^(PUT|POST) /client/v4/accounts/\w+/workers/scripts/[\w-]+(/versions)?"
    r"(\?\S*)? \d+ (\d+)ms$"
)


# --- the stub -----------------------------------------------------------------


class StubState:
    """What a deploy and its redeploy need remembered, and nothing more."""

    def __init__(self) -> None:
        self.scripts: dict[str, list] = {}  # name -> bindings of the last upload
        self.queues: dict[str, dict] = {}
        self.databases: dict[str, str] = {}
        self.lock = threading.Lock()


def envelope(result, *, success: bool = True, code: int = 0) -> bytes:
    errors = [] if success else [{"code": code, "message": "not found"}]
    return json.dumps(
        {"success": success, "errors": errors, "messages": [], "result": result}
    ).encode()


class StubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: StubState

    def log_message(self, *args) -> None:  # quiet
        pass

    def answer(self, result=None, *, status: int = 200, code: int = 0) -> None:
        body = envelope(result, success=status < 400, code=code)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def route(self) -> None:
        """One canned answer per call of the deploy."""
        state, body = self.state, self.body()
        path = self.path.split("?", 1)[0].split("/accounts/", 1)[-1].split("/", 1)[-1]
        parts = path.split("/")
        method = self.command
        with state.lock:
            if parts[:2] == ["workers", "subdomain"]:
                return self.answer({"subdomain": "bench"})
            if parts[:2] == ["workers", "services"]:
                if parts[2] not in state.scripts:
                    return self.answer(status=404, code=10090)
                return self.answer(
                    {
                        "default_environment": {
                            "script": {"tag": "t", "migration_tag": "v1"}
                        }
                    }
                )
            if parts[:2] == ["workers", "workers"]:
                return self.answer(
                    {"subdomain": {"enabled": False, "previews_enabled": False}}
                )
            if parts[:2] == ["workers", "assets"]:
                return self.answer({"jwt": "complete"})
            if parts[:2] == ["workers", "scripts"]:
                return self.script(parts[2], parts[3:], method, body)
            if parts[0] == "storage" and method == "POST":
                return self.answer(
                    {"id": uuid.uuid4().hex, "title": json.loads(body)["title"]}
                )
            if parts[:2] == ["d1", "database"]:
                if method == "POST":
                    name = json.loads(body)["name"]
                    state.databases[name] = str(uuid.uuid4())
                    return self.answer({"uuid": state.databases[name], "name": name})
                if len(parts) > 2:
                    key = parts[2]
                    name = next(
                        (n for n, u in state.databases.items() if key in (n, u)), None
                    )
                    if name is None:
                        return self.answer(status=404, code=7404)
                    return self.answer({"uuid": state.databases[name], "name": name})
                return self.answer([])
            if parts[0] == "queues":
                if method == "POST" and len(parts) == 1:
                    name = json.loads(body)["queue_name"]
                    state.queues[name] = {
                        "queue_id": uuid.uuid4().hex,
                        "queue_name": name,
                        "consumers": [],
                    }
                    return self.answer(state.queues[name])
                if method == "POST":  # a consumer
                    queue = next(
                        q for q in state.queues.values() if q["queue_id"] == parts[1]
                    )
                    queue["consumers"].append(
                        {
                            "type": "worker",
                            "script": json.loads(body)["script_name"],
                            "consumer_id": uuid.uuid4().hex,
                        }
                    )
                    return self.answer({})
                if method == "PUT":
                    return self.answer({})
                names = re.findall(r"name=([^&]+)", self.path)
                return self.answer(
                    [q for n, q in state.queues.items() if not names or n in names]
                )
            return self.answer([])

    def script(self, name: str, rest: list, method: str, body: bytes) -> None:
        state = self.state
        sub = rest[0] if rest else ""
        if sub in ("secrets", "deployments", "settings") and method == "GET":
            if name not in state.scripts:
                return self.answer(status=404, code=10007)
            if sub == "settings":
                return self.answer({"bindings": state.scripts[name]})
            if sub == "deployments":
                return self.answer(
                    {
                        "deployments": [
                            {
                                "id": "d",
                                "versions": [{"version_id": "v", "percentage": 100}],
                            }
                        ]
                    }
                )
            return self.answer([])
        if sub == "assets-upload-session":
            manifest = json.loads(body)["manifest"]
            if name in state.scripts:
                return self.answer({"jwt": "complete", "buckets": []})
            return self.answer(
                {"jwt": "upload", "buckets": [[e["hash"] for e in manifest.values()]]}
            )
        if sub in ("", "versions") and method in ("PUT", "POST"):
            parts = parse_form(
                body, content_type=self.headers["Content-Type"], max_parts=1000
            )
            metadata = json.loads(next(p.data for p in parts if p.name == "metadata"))
            uploaded = [
                b for b in metadata.get("bindings", []) if b["type"] != "inherit"
            ]
            state.scripts[name] = uploaded if not sub else state.scripts[name]
            version = str(uuid.uuid4())
            return self.answer(
                {
                    "id": version,
                    "deployment_id": version,
                    "resources": {"script": {"etag": "e"}},
                }
            )
        if sub == "subdomain":
            return self.answer({"enabled": True, "previews_enabled": True})
        return self.answer({})

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = route


def start_stub() -> tuple[ThreadingHTTPServer, str]:
    handler = type("Handler", (StubHandler,), {"state": StubState()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


# --- one deploy ----------------------------------------------------------------------


def wrangler_home(tmp: Path, label: str, origin: str, account: dict) -> Wrangler:
    """A wrangler with a cached temporary account, so no proof of work runs."""
    wrangler = Wrangler(api_base=f"{origin}/client/v4", home=tmp / label / "home")
    wrangler.cache_file.parent.mkdir(parents=True, exist_ok=True)
    wrangler.cache_file.write_text(
        "[account]\n"
        + "".join(f'{k} = "{v}"\n' for k, v in account["account"].items())
        + "\n[claim]\n"
        + "".join(f'{k} = "{v}"\n' for k, v in account["claim"].items())
    )
    return wrangler


def timed_deploy(wrangler: Wrangler, where: Path, *extra: str) -> float:
    start = time.perf_counter()
    run = wrangler("deploy", "--temporary", *extra, cwd=where, timeout=300)
    elapsed = time.perf_counter() - start
    if run.returncode != 0:
        raise RuntimeError(run.output)
    return elapsed


def new_account(now) -> dict:
    made = create_temporary_account(now=now)
    expires = iso(made.account.claim_expires_at)
    return {
        "account": {
            "id": made.account.id,
            "name": made.account.name,
            "apiToken": made.api_token,
            "expiresAt": expires,
        },
        "claim": {
            "url": made.claim_url,
            "expiresAt": iso(made.account.claim_expires_at),
        },
    }


def stub_account(now) -> dict:
    later = iso(now + timedelta(hours=1))
    return {
        "account": {
            "id": uuid.uuid4().hex,
            "name": "stub",
            "apiToken": "stub",
            "expiresAt": later,
        },
        "claim": {"url": "http://127.0.0.1/claim/x", "expiresAt": later},
    }


def round_trip(
    tmp: Path, label: str, origin: str, account: dict
) -> tuple[float, float]:
    """(first deploy, unchanged redeploy) of the full Worker, in seconds."""
    where = shutil.copytree(PROJECT, tmp / label / "full")
    wrangler = wrangler_home(tmp, label, origin, account)
    first = timed_deploy(wrangler, where, "--secrets-file", "secrets.json")
    return first, timed_deploy(wrangler, where)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    log = tmp / "access.log"
    ours, theirs = [], []  # (first deploy, redeploy) per round
    with (
        throwaway_database("bench_deploy"),
        gunicorn_server(tmp / "media", log) as origin,
    ):
        round_trip(tmp, "warm-up", origin, new_account(timezone.now()))  # caches
        for n in range(args.rounds):
            ours.append(
                round_trip(tmp, f"ours-{n}", origin, new_account(timezone.now()))
            )
            stub, stub_origin = start_stub()  # fresh: it remembers one deploy
            try:
                account = stub_account(timezone.now())
                theirs.append(round_trip(tmp, f"stub-{n}", stub_origin, account))
            finally:
                stub.shutdown()

    print(f"wrangler deploy --temporary, full Worker, median of {args.rounds} rounds")
    for index, step in enumerate(("first", "redeploy")):
        mine = statistics.median(r[index] for r in ours)
        base = statistics.median(r[index] for r in theirs)
        print(
            f"  {step:9} claimportal {mine:6.2f} s   stub {base:6.2f} s   "
            f"ratio {mine / base:4.2f} (goal <= 1.3)"
        )
    uploads = [m for m in map(UPLOAD.match, log.read_text().splitlines()) if m]
    for method in ("PUT", "POST"):
        times = [int(m.group(4)) for m in uploads if m.group(1) == method]
        if times:
            what = (
                "PUT script (first deploy)"
                if method == "PUT"
                else "POST versions (redeploy)"
            )
            print(
                f"  server time per {what}: median "
                f"{statistics.median(times):.0f} ms over {len(times)}"
            )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
