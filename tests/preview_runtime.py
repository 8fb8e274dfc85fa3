"""A real preview runtime (``manage.py preview_runtime``) for tests, and
builders for Workers made straight from rows.

A test module takes the fixtures by assigning them (``runtime =
preview_runtime.runtime``, likewise ``preview_settings`` and ``_media_root``).
One runtime serves a whole module; each test's rows are flushed after it,
and the runtime's reconcile loop then stops those Workers and deletes their
files.
"""

import http.client
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import (
    CloudAccount,
    WorkerDeployment,
    WorkerModule,
    WorkerScript,
    WorkerVersion,
)
from preview_runtime.unix import unix_request
from tests.conftest import ROOT, stop_process, subprocess_env
from tests.e2e.conftest import node_tools_dir

ESM = "application/javascript+module"

# A Worker that answers "fine" and records each queue job and cron firing in KV.
QUEUE_AND_CRON_WORKER = """
export default {
  async fetch() { return new Response("fine"); },
  async queue(batch, env) {
    for (const message of batch.messages) {
      await env.KV.put("job:" + message.body.job, "done");
      message.ack();
    }
  },
  async scheduled(event, env) { await env.KV.put("cron", event.cron); },
};
"""


@dataclass
class Edge:
    """``manage.py edge`` (HAProxy) on a free loopback port."""

    process: subprocess.Popen
    port: int

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            stop_process(self.process)


def start_edge(env: dict[str, str], output: Any = None) -> Edge:
    """The edge as production runs it, with ``env`` (the portal's pools, the
    preview state dir); returns once it accepts connections."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "edge", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return Edge(process, port)
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("the edge did not start") from None
            time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


class Runtime:
    """The runtime process, its state dir, and ways to talk to both."""

    def __init__(self, state_dir: Path, media_root: Path, root: Path = ROOT) -> None:
        self.root = root  # the checkout it runs from
        self.state_dir = state_dir
        self.media_root = media_root
        self.process: subprocess.Popen | None = None
        self.edge: Edge | None = None
        self.port = 0

    def start(self, **env: str) -> None:
        self.env = env or getattr(self, "env", {})
        (self.state_dir / "runtime.json").unlink(missing_ok=True)
        self.output = open(self.state_dir / "runtime.out", "ab")  # noqa: SIM115
        environment = subprocess_env(
            CLAIMPORTAL_PREVIEW_STATE_DIR=str(self.state_dir),
            CLAIMPORTAL_NODE_TOOLS=str(node_tools_dir()),
            MEDIA_ROOT=str(self.media_root),
            CLAIMPORTAL_PREVIEW_RECONCILE_SECONDS="1",
            **{
                # Room for a Worker's first binding call on a busy machine;
                # the modules that test the limit itself set a shorter one.
                "CLAIMPORTAL_PREVIEW_REQUEST_TIMEOUT_SECONDS": "10",
                **self.env,
            },
        )
        if self.edge is None:
            self.edge = start_edge(environment, self.output)
            self.port = self.edge.port
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "preview_runtime"],
            cwd=self.root,
            env=environment,
            stdout=self.output,
            stderr=subprocess.STDOUT,
        )
        ready = self.state_dir / "runtime.json"
        deadline = time.monotonic() + 60
        while not ready.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the runtime did not start:\n{self.log()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop_process(self.process)
        if self.edge is not None:
            self.edge.stop()
            self.edge = None
        self.output.close()

    def log(self) -> str:
        return (self.state_dir / "runtime.out").read_text(errors="replace")[-6000:]

    def command(self, method: str, url: str, timeout: float = 30) -> dict[str, Any]:
        status, body = unix_request(
            self.state_dir / "supervisor.sock", method, url, timeout=timeout
        )
        assert status == 200, body
        return json.loads(body)

    def apply(self, script: WorkerScript) -> dict[str, Any]:
        return self.command("POST", f"/apply/{script.pk}")

    def reconcile(self) -> dict[str, Any]:
        return self.command("POST", "/reconcile")

    def get(
        self,
        host: str,
        path: str = "/",
        *,
        method: str = "GET",
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
        source: str | None = None,
    ) -> Answer:
        """A request to the edge as a browser on ``host`` would send it, from
        the loopback address ``source`` if given (any of 127.0.0.0/8)."""
        connection = http.client.HTTPConnection(
            "127.0.0.1",
            self.port,
            timeout=timeout,
            source_address=(source, 0) if source else None,
        )
        try:
            connection.request(
                method, path, body=body, headers={"Host": host, **(headers or {})}
            )
            response = connection.getresponse()
            return Answer(
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.read(),
            )
        finally:
            connection.close()

    def worker_log(self, script: WorkerScript) -> str:
        return (self.worker_dir(script) / "log").read_text(errors="replace")

    def worker_dir(self, script: WorkerScript) -> Path:
        return self.state_dir / "accounts" / script.account_id / str(script.pk)

    def wait_for(self, predicate, *, timeout: float = 15, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n{self.log()}")
            time.sleep(0.1)


@pytest.fixture(scope="module")
def runtime(request, django_db_setup, django_db_blocker):
    """The module's runtime; a module may set RUNTIME_ENV (settings for it)."""
    # A short path: unix socket paths are limited to about 100 bytes, and
    # sandboxed processes (nobody) must be able to walk to their files.
    state_dir = Path(tempfile.mkdtemp(prefix="cp-pv-"))
    state_dir.chmod(0o755)
    media_root = state_dir / "media"
    media_root.mkdir()
    runtime = Runtime(state_dir, media_root)
    runtime.start(**getattr(request.module, "RUNTIME_ENV", {}))
    yield runtime
    runtime.stop()
    shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture
def _media_root(settings, runtime) -> Path:
    """Bytes the tests store are the ones the runtime reads (assets, D1)."""
    settings.MEDIA_ROOT = runtime.media_root
    return runtime.media_root


@pytest.fixture
def preview_settings(settings, runtime, transactional_db):
    """Django in the test process talks to this module's runtime."""
    settings.CLAIMPORTAL_PREVIEW_STATE_DIR = runtime.state_dir
    settings.CLAIMPORTAL_WORKERD_BIN = str(
        node_tools_dir() / "node_modules" / "workerd" / "bin" / "workerd"
    )
    return settings


def make_worker(
    account: CloudAccount,
    name: str,
    main: str,
    *,
    modules: dict[str, tuple[str, bytes]] | None = None,
    bindings: list[dict[str, Any]] | None = None,
    assets: dict[str, Any] | None = None,
    compatibility_date: str = "2026-06-01",
    script: WorkerScript | None = None,
) -> WorkerScript:
    """A deployed Worker made from rows, as the Workers API stores an upload:
    ``main`` is the source of ``index.js``; a second call with ``script``
    deploys a new version of it."""
    now = timezone.now()
    if script is None:
        script = WorkerScript.objects.create(account=account, name=name)
    number = script.versions.count() + 1
    version = WorkerVersion.objects.create(
        script=script,
        number=number,
        main_module="index.js",
        compatibility_date=compatibility_date,
        bindings=bindings or [],
        assets=assets or {},
        metadata={"main_module": "index.js"},
    )
    WorkerModule.objects.create(
        version=version, name="index.js", content_type=ESM, content=main.encode()
    )
    for module_name, (content_type, content) in (modules or {}).items():
        WorkerModule.objects.create(
            version=version,
            name=module_name,
            content_type=content_type,
            content=content,
        )
    WorkerDeployment.objects.create(
        script=script, versions=[{"version_id": str(version.pk), "percentage": 100}]
    )
    script.current_version = version
    script.updated_at = now
    script.save(update_fields=["current_version", "updated_at"])
    return script


def host_of(script: WorkerScript) -> str:
    return f"{script.name}.{script.account.subdomain}.preview.localhost"
