"""The preview runtime's supervisor: one workerd per live Worker, the routes
the edge (HAProxy, ``manage.py edge``) sends visitors by, and a reconcile loop
that makes the processes match the records (the desired state).

It does not import Django: its knobs come as a ``RuntimeConfig`` and what it
needs from the database (the desired state, a version's files, an account's
identity, a binding credential's account) as ``Lookups``, small callables
the Django side (``preview_runtime.services.wiring``) passes in.

One thread owns all the state below (``run``); the control socket, the edge's
pages backend and Django reach it through commands (``control``) or read what
it publishes. Every Worker has a directory
``accounts/<account id>/<script id>/`` under the state dir holding its two
sockets (owned here, passed to each successive process, so a restart queues
visitors instead of refusing them), its log, its rendered versions and its
Durable Object data. Purging an account is deleting its directory.

Sandboxed (``sandbox``), each process runs in a cell of its own: the
account's UID, its own namespaces and a cgroup per process (``sandbox.py``);
the version folder and the Durable Object folder belong to that UID, the
folders above them to root and the edge's group (0710), ``http.sock`` to the
UID and the edge's group (0660), ``control.sock`` (its door to the binding
gateway) to the UID, ``admin.sock`` and the log to root.

The edge connects straight to a Worker's ``http.sock`` (through the symlink of
the slot its host holds). A stopped Worker keeps its sockets: a visitor's
connection waits in the socket's queue, which is how the loop learns of the
visit (wake-on-visit) and starts the Worker; the request is answered then.
"""

import contextlib
import json
import logging
import os
import queue
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from . import control, gateway, pages, process, sandbox
from .config import RuntimeConfig
from .render import WorkerConfigInvalid, WorkerPaths
from .routes import EdgePaths, Routes
from .targets import Desired, Target
from .unix import unix_request

logger = logging.getLogger("claimportal.previews")

CRASH_WINDOW = 60.0  # seconds: this many crashes within it and we give up ...
CRASH_LIMIT = 5
RETRY_FAILED = 60.0  # a version that failed to start is tried again after this
DRAIN_SECONDS = 5.0  # an old process finishes its requests for at most this long
RETIRE_WAIT = 1.0  # how long a swap waits for the old process to let go
TICK = 0.2
LOG_LIMIT = 1 << 20  # a Worker's log past this keeps only its end ...
LOG_KEPT = 256 << 10  # ... this much of it
ASK_WAIT = 3.0  # how long a trigger waits for the main thread (then: again)


class RecordsUnavailable(Exception):
    """The records cannot be read right now (the database is down): the loop
    keeps what it has and tries again at its next tick."""


@dataclass(frozen=True)
class Lookups:
    """What the runtime reads from the records, as plain calls."""

    # The whole desired state; raises RecordsUnavailable.
    desired: Callable[[], Desired]
    # Render a version into a folder, return its config file: (version id,
    # folder, paths, banner, with its assets). Raises WorkerConfigInvalid
    # for an upload that cannot run, RecordsUnavailable.
    write_version: Callable[[str, Path, WorkerPaths, str, bool], Path]
    # The account's UID and GID (allocated on first use).
    identity: Callable[[str], sandbox.Identity]
    # The account a binding credential names, None when it is not genuine.
    account_of_token: Callable[[str], str | None]
    # Say this runtime stopped: it takes no new accounts meanwhile.
    leave: Callable[[], None] = lambda: None


@dataclass
class Slot:
    """One Worker's place in the runtime."""

    key: str
    account_id: str
    directory: Path
    http: socket.socket | None = None
    admin: socket.socket | None = None
    control: socket.socket | None = None  # its door to the binding gateway
    process: subprocess.Popen | None = None
    version_id: str = ""
    banner: str = ""  # what the running process adds to HTML pages
    started_at: float = 0.0
    startup_ms: int | None = None
    state: str = "stopped"  # running, stopped, failed, crashed
    error: str = ""
    failed_version: str = ""
    failed_at: float = 0.0
    crashes: list[float] = field(default_factory=list)
    cpu_used: float = -1.0
    last_active: float = 0.0
    exit_reason: str = ""  # why its last process ended, when we know (memory ...)
    pinned_since: float = 0.0  # when it started using its whole CPU quota
    cpu_sample: tuple[float, float] = (0.0, 0.0)  # (monotonic, cpu seconds)
    cells: int = 0  # cgroups made for it so far (each process has its own)
    storage_checked: float = 0.0  # when guard_storage last looked (monotonic)

    @property
    def running(self) -> subprocess.Popen | None:
        """The process, while it runs."""
        if self.process is not None and self.process.poll() is None:
            return self.process
        return None

    @property
    def alive(self) -> bool:
        return self.running is not None

    def summary(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "version_id": self.version_id,
            "startup_ms": self.startup_ms,
            "error": self.error,
            "pid": running.pid if (running := self.running) else None,
            "exit_reason": self.exit_reason,
        }


class Supervisor:
    def __init__(
        self,
        *,
        config: RuntimeConfig,
        lookups: Lookups,
        log: Callable[[str], None] = logger.info,
    ) -> None:
        self.config = config
        self.lookups = lookups
        self.root = config.state_dir
        self.name = config.name
        self.edge = EdgePaths(config.edge_dir)
        self.at_edge = self.edge.runtime(config.name)
        self.sandbox = config.sandbox
        self.binary = config.binary
        self.say = log
        self.edge_gid = config.edge_gid
        self.commands: queue.Queue[control.Command] = queue.Queue()
        self.slots: dict[str, Slot] = {}
        self.desired = Desired(targets={}, gone={})
        self.retiring: list[tuple[subprocess.Popen, float]] = []
        self.stopping = False
        # What the edge routes by: host -> key, and subdomain -> (state, detail)
        # of accounts that are gone (replaced whole, read by the pages threads).
        self.hosts: dict[str, str] = {}
        self.gone: dict[str, tuple[str, str]] = {}
        self.routes = Routes(self.edge, self.at_edge, slots=config.edge_slots)
        # What "invoke" may use: key -> (target, admin socket path).
        self.running: dict[str, tuple[Target, Path]] = {}
        self.published: dict[str, Any] = {}
        self.handlers: dict[str, Callable[[control.Command], Any]] = {
            "apply": self._apply,
            "reconcile": self._reconcile_command,
            "stuck": self._stuck,
            "wake": self._wake,
        }

    # --- setup and the loop ----------------------------------------------------

    def start(self) -> None:
        """Start the internal endpoints, the Workers, the edge's pages and
        routes."""
        self.root.mkdir(parents=True, exist_ok=True)
        # Workers see their files through their cells' mounts, never by these
        # paths; the edge walks them to the sockets (0711: no listing).
        self.root.chmod(0o711)
        (self.root / "accounts").mkdir(exist_ok=True)
        (self.root / "accounts").chmod(0o711)
        self.cgroups = sandbox.group_prefix(self.root)
        (self.at_edge.root / "slots").mkdir(parents=True, exist_ok=True)
        self.control_server = control.serve(
            self.root / "supervisor.sock",
            self.commands,
            direct={
                "invoke": self._invoke_command,
                # Pages ask this: answered at once, even while a Worker starts.
                "status": lambda _command: self.published,
            },
            timeout=self.config.startup_timeout + 25,
        )
        self._start_internal_endpoints()
        self.reconcile()
        self._wait_for_internal_endpoints()
        self._publish_running()
        self.pages = pages.serve(self.at_edge.pages, self._page_for)
        self._listen_for_failures()
        (self.root / "runtime.json").write_text(json.dumps({"pid": os.getpid()}))

    def _start_internal_endpoints(self) -> None:
        """Django's binding endpoints in their own gunicorn, never on the public
        web server, on a socket only this process opens; each Worker reaches
        them on its own ``control.sock`` through the gateway, which shares them
        out by account."""
        config = self.config
        processes, threads = config.binding_processes, config.binding_threads
        upstream = self.root / "bindings.sock"
        listener = process.unix_listener(upstream)
        upstream.chmod(0o600)  # the gateway's alone
        self.internal = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                config.bindings_app,
                "--bind",
                f"fd://{listener.fileno()}",
                "--worker-class",
                "gthread",
                "--workers",
                str(processes),
                "--threads",
                str(threads),
                # A process takes no more calls than it has threads: the
                # gateway decides who waits, not gunicorn's queue.
                "--worker-connections",
                str(threads),
                "--keep-alive",
                "0",
                "--no-control-socket",
                "--timeout",
                str(config.binding_call_seconds + 30),
                "--log-level",
                "warning",
            ],
            pass_fds=[listener.fileno()],
            cwd=config.project_dir,
            preexec_fn=process._die_with_parent,
        )
        listener.close()
        self.gateway = gateway.serve(
            upstream=upstream,
            account_of=self.lookups.account_of_token,
            limiter=gateway.FairLimiter(
                total=processes * threads,
                per_key=config.binding_concurrency,
            ),
            wait_seconds=config.binding_wait_seconds,
            upstream_timeout=config.binding_call_seconds + 15,
            # Its share running and three times that waiting their turn in
            # the limiter, where a wait has its deadline and its clear 429.
            per_door=4 * config.binding_concurrency,
        )

    def _wait_for_internal_endpoints(self) -> None:
        """Ready means ready: until Django answers, a Worker's first binding
        call would wait for it to boot."""
        deadline = time.monotonic() + self.config.startup_timeout
        while time.monotonic() < deadline:
            try:
                unix_request(self.root / "bindings.sock", "GET", "/", timeout=5)
                return
            except OSError:
                time.sleep(0.1)
        logger.warning("preview runtime: the binding endpoints are not answering yet")

    def run(self) -> None:
        """Serve until ``stop()``: commands as they come, reconcile regularly."""
        interval = self.config.reconcile_seconds
        next_reconcile = time.monotonic() + interval
        while not self.stopping:
            try:
                command = self.commands.get(timeout=TICK)
            except queue.Empty:
                command = None
            if command is not None:
                self._run_command(command)
            self.reap()
            self.wake_visited()
            if time.monotonic() >= next_reconcile:
                self.reconcile()
                next_reconcile = time.monotonic() + interval
            self.stop_idle()
            self.stop_pinned()
            self.guard_storage()
            self._publish_running()

    def _publish_running(self) -> None:
        """Snapshots other threads may read without touching the process table."""
        self.running = {
            key: (self.desired.targets[key], slot.directory / "admin.sock")
            for key, slot in self.slots.items()
            if slot.alive and key in self.desired.targets
        }
        self.published = self.status()
        self.routes.update(
            {
                host: self.slots[key].directory / "http.sock"
                for host, key in self.hosts.items()
                if key in self.slots and self.slots[key].http is not None
            },
            held=set(self.hosts),
        )

    # --- queue() and scheduled(), for the Celery tasks that deliver and fire -----

    def _ask(self, action: str, key: str) -> dict[str, Any]:
        """A command for the main thread, from a thread of the control server."""
        command = control.Command(action, key, {})
        self.commands.put(command)
        try:
            return command.reply.result(timeout=ASK_WAIT)
        except TimeoutError:  # busy starting Workers: try again in a moment
            return {"state": "starting"}
        except Exception:
            return {"state": "unavailable"}

    def _wake(self, command: control.Command) -> dict[str, Any]:
        """Start a Worker stopped while idle, for a trigger that needs it; say
        why not where it cannot run."""
        target = self.desired.targets.get(command.arg)
        slot = self.slots.get(command.arg)
        if target is None or slot is None:
            return {"state": "starting"}
        if target.limited:
            return {"state": "limited"}
        if not slot.alive and slot.state == "stopped":
            self.launch(slot, target)
        return {"state": "running" if slot.alive else slot.state}

    def _invoke_command(self, command: control.Command) -> dict[str, Any]:
        """Run a Worker's ``queue`` handler (the body is the batch) or its
        ``scheduled`` one (``cron`` and ``time`` in the query), starting the
        Worker first if it was stopped. Runs in the caller's own thread: a
        handler that hangs holds only that one, up to the request limit."""
        handler = command.query.get("handler")
        if handler not in ("queue", "scheduled"):
            return {"outcome": "unknown handler"}
        deadline = time.monotonic() + self.config.startup_timeout
        while command.arg not in self.running and time.monotonic() < deadline:
            state = self._ask("wake", command.arg).get("state")
            if state not in ("running", "starting"):
                return {"outcome": "not running", "state": state}
            if command.arg not in self.running:
                time.sleep(TICK)
        running = self.running.get(command.arg)
        if running is None:
            return {"outcome": "not running"}
        target, admin = running
        if handler == "queue":
            url, body = "/queue", command.body
        else:
            cron = command.query.get("cron") or (target.cron or ("",))[0]
            when = command.query.get("time") or str(int(time.time() * 1000))
            url, body = f"/scheduled?{urlencode({'cron': cron, 'time': when})}", None
        try:
            status, answer = unix_request(
                admin,
                "POST",
                url,
                body=body,
                headers={"Content-Type": "application/json"},
                timeout=self.config.request_timeout,
            )
            result = json.loads(answer) if status == 200 else None
        except (OSError, ValueError):
            result = None
        return result if isinstance(result, dict) else {"outcome": "exception"}

    def _run_command(self, command: control.Command) -> None:
        handler = self.handlers.get(command.action)
        try:
            if handler is None:
                answer = {"error": f"unknown command {command.action!r}"}
            else:
                answer = handler(command)
            self._publish_running()  # before the caller hears back
            command.reply.set_result(answer)
        except Exception as error:  # reported to the caller, the loop goes on
            command.reply.set_exception(error)

    def stop(self) -> None:
        """Stop every process (the data on disk stays)."""
        self.stopping = True
        try:
            self.lookups.leave()
        except RecordsUnavailable:
            logger.warning("preview runtime: cannot record that it stopped")
        self.routes.update({})  # the pages backend answers for every host
        self.pages.shutdown()
        for slot in self.slots.values():
            if slot.process is not None:
                process.stop(slot.process, grace=2)
        for old, _deadline in self.retiring:
            process.stop(old, grace=0)
        process.stop(self.internal, grace=5)
        self.gateway.stop()
        self.control_server.shutdown()
        if self.sandbox:
            sandbox.remove_empty_groups(self.cgroups, itself=True)

    # --- the database's view ---------------------------------------------------

    def reconcile(self) -> None:
        """Make processes, routes and disk match the records."""
        try:
            desired = self.lookups.desired()
        except RecordsUnavailable:
            logger.exception("preview runtime: cannot read the records")
            return
        self.desired = desired
        self._update_routes(desired)
        leaving = [k for k in self.slots if k not in desired.targets]
        if leaving:
            # Their hosts go to our pages (suspended, expired ...) before their
            # processes stop, so a visitor meanwhile finds the page, not a
            # socket nobody answers.
            self._publish_running()
        for key in leaving:
            self._remove(self.slots.pop(key))
        for target in desired.targets.values():
            self._converge(target)
        self._remove_orphaned_files(desired)
        if self.sandbox:
            sandbox.remove_empty_groups(self.cgroups)

    def _converge(self, target: Target) -> None:
        slot = self.slots.get(target.key)
        if target.limited:
            if slot is not None:
                self._close(slot)
                slot.state = "stopped"
            return
        if slot is None:
            slot = self.slots[target.key] = Slot(
                key=target.key,
                account_id=target.account_id,
                directory=self._worker_dir(target),
            )
        now = time.monotonic()
        same = slot.version_id == target.version_id
        if same and slot.state == "stopped":
            return  # stopped while idle: the next visitor starts it
        # Claiming an account takes its banner away: that is a new process too.
        if same and slot.alive and slot.banner == target.banner:
            return
        if same and slot.state == "crashed" and now - slot.crashes[-1] < RETRY_FAILED:
            return  # a crash loop: try again later
        if slot.failed_version == target.version_id and now - slot.failed_at < (
            RETRY_FAILED
        ):
            return
        self.launch(slot, target)

    def _worker_dir(self, target: Target) -> Path:
        return self.root / "accounts" / target.account_id / target.key

    def _remove_orphaned_files(self, desired: Desired) -> None:
        """Delete what purged accounts and deleted scripts left on disk."""
        accounts = self.root / "accounts"
        for account_dir in accounts.iterdir():
            if account_dir.name not in desired.accounts:
                shutil.rmtree(account_dir, ignore_errors=True)
                continue
            for script_dir in account_dir.iterdir():
                key = (account_dir.name, script_dir.name)
                if key not in desired.scripts and script_dir.name not in self.slots:
                    shutil.rmtree(script_dir, ignore_errors=True)

    # --- processes --------------------------------------------------------------

    def launch(self, slot: Slot, target: Target) -> None:
        """Start the target's version; replace what runs without refusing a
        visitor. A version that cannot start leaves the old one serving.
        Whatever goes wrong fails this Worker alone, never the runtime."""
        try:
            self._launch(slot, target)
        except Exception as error:  # an upload we did not foresee: its own 502
            logger.exception("preview runtime: cannot start %s", target.key)
            self._failed(slot, target, f"The runtime could not start it: {error}")

    def _prepare(self, slot: Slot, target: Target) -> tuple[Path, process.Cell | None]:
        """Render the version into its folder and make the Worker's cell."""
        directory = slot.directory / f"v-{target.version_id}"
        objects = slot.directory / "do"
        identity = self.lookups.identity(target.account_id) if self.sandbox else None
        for folder in (slot.directory.parent, slot.directory):
            folder.mkdir(parents=True, exist_ok=True)
            if identity is not None:
                # The edge's group passes (to http.sock); no Worker's UID does:
                # its cell shows it its own files.
                os.chown(folder, 0, self.edge_gid)
                folder.chmod(0o710)
        objects.mkdir(exist_ok=True)
        config = self.lookups.write_version(
            target.version_id,
            directory,
            process.worker_paths(
                directory=directory,
                control_socket=slot.directory / "control.sock",
                objects=objects,
                cell=identity is not None,
            ),
            target.banner,
            # Only the banner changes: the running process serves these files.
            not (slot.alive and slot.version_id == target.version_id),
        )
        if identity is None:
            return config, None
        sandbox.own(directory, identity)
        sandbox.own(objects, identity)
        slot.cells += 1
        cell = process.make_cell(
            identity=identity,
            cgroup=f"{self.cgroups}/{target.key}-{slot.cells}",
            limits=self.config.limits,
            objects=objects,
            control=slot.directory / "control.sock",
        )
        return config, cell

    def _launch(self, slot: Slot, target: Target) -> None:
        began = time.monotonic()
        if problem := self._storage_problem(slot):
            self._failed(slot, target, problem)
            return
        try:
            config, cell = self._prepare(slot, target)
        except RecordsUnavailable:
            logger.exception("preview runtime: cannot read version %s", target.key)
            return
        except WorkerConfigInvalid as invalid:
            self._failed(slot, target, invalid.message)
            return
        http, admin = slot.http, slot.admin
        if http is None or admin is None:  # made, and closed, together
            owner = (cell.identity.uid, self.edge_gid) if cell else None
            http = slot.http = process.unix_listener(
                slot.directory / "http.sock", owner=owner
            )
            admin = slot.admin = process.unix_listener(
                slot.directory / "admin.sock", owner=(0, 0) if cell else None
            )
            slot.control = process.unix_listener(
                slot.directory / "control.sock",
                owner=(cell.identity.uid, 0) if cell else None,
            )
            self.gateway.add(slot.control)
        old = slot.running
        if old is not None and target.has_durable_objects:
            # Two processes must never share one Durable Object's SQLite file:
            # stop first; visitors wait in the socket's queue meanwhile.
            process.stop(old, grace=DRAIN_SECONDS)
            old = None
        log = slot.directory / "log"
        if slot.version_id != target.version_id:
            log.write_bytes(b"")  # one log per version; a crash's stays for its restart
        log.chmod(0o600)
        try:
            started = process.spawn(
                config=config,
                sockets={"http": http, "admin": admin},
                log=log,
                cell=cell,
                timeout=self.config.startup_timeout,
                binary=self.binary,
                file_bytes=self.config.storage_mb << 20,
            )
        except process.StartupFailed as failure:
            if cell is not None:
                cell.cgroup.remove()
            if old is None:
                self._close(slot)
            self._failed(slot, target, failure.message)
            return
        if old is not None:
            self._retire(old)
        slot.process = started.process
        slot.startup_ms = started.startup_ms
        slot.started_at = slot.last_active = time.monotonic()
        slot.cpu_used = -1.0
        slot.pinned_since, slot.cpu_sample = 0.0, (0.0, 0.0)
        slot.state, slot.error, slot.failed_version = "running", "", ""
        previous = slot.version_id
        slot.version_id, slot.banner = target.version_id, target.banner
        if previous and previous != target.version_id:
            shutil.rmtree(slot.directory / f"v-{previous}", ignore_errors=True)
        self.say(
            f"preview {target.host}: version {target.version_id} listening after "
            f"{started.startup_ms} ms ({time.monotonic() - began:.2f} s in all)"
        )

    def _exit_reason(self, ended: subprocess.Popen) -> str:
        """What the kernel says about a cell whose process ended."""
        if not isinstance(ended, sandbox.Jailed):
            return ""
        reason = ""
        if ended.cgroup.out_of_memory():
            reason = (
                f"It used more than its {self.config.limits.memory_mb} MiB of "
                "memory and was stopped."
            )
        ended.cgroup.remove()
        return reason

    def stop_pinned(self) -> None:
        """Stop Workers that kept using their whole CPU quota (a loop in
        waitUntil, an alarm ...) for CLAIMPORTAL_PREVIEW_CPU_PINNED_SECONDS:
        the kernel throttles them meanwhile, this ends it."""
        limit = self.config.cpu_pinned_seconds
        if not self.sandbox or limit <= 0:
            return
        quota = self.config.limits.cpu_percent / 100
        now = time.monotonic()
        for slot in self.slots.values():
            if not slot.alive or not isinstance(slot.process, sandbox.Jailed):
                continue
            used = slot.process.cgroup.cpu_seconds()
            then, before = slot.cpu_sample
            if now - then < 1.0:
                continue
            slot.cpu_sample = (now, used)
            if not then:
                continue
            if (used - before) / (now - then) < 0.9 * quota:
                slot.pinned_since = 0.0
            elif not slot.pinned_since:
                slot.pinned_since = then
            elif now - slot.pinned_since >= limit:
                self._pause(slot)
                slot.exit_reason = (
                    f"It used its whole CPU quota for {limit} s and was stopped."
                )
                self.say(f"preview {slot.key}: stopped, pinned at its CPU quota")

    def guard_storage(self) -> None:
        """Each second, for every running Worker: a log past LOG_LIMIT keeps
        its last LOG_KEPT bytes, and a Worker whose Durable Objects hold more
        than CLAIMPORTAL_PREVIEW_STORAGE_MB is stopped and stays so while the
        data is there, saying why. Between looks a Worker can write past
        either for a second at most, and no single file past the limit
        (process.spawn)."""
        now = time.monotonic()
        for slot in self.slots.values():
            if not slot.alive or now - slot.storage_checked < 1.0:
                continue
            slot.storage_checked = now
            _cut_log(slot.directory / "log")
            if problem := self._storage_problem(slot):
                self._close(slot)
                slot.state, slot.error = "failed", problem
                slot.failed_version, slot.failed_at = slot.version_id, now
                self.say(f"preview {slot.key}: stopped, over its storage limit")

    def _storage_problem(self, slot: Slot) -> str:
        limit = self.config.storage_mb
        if _bytes_under(slot.directory / "do") <= limit << 20:
            return ""
        return (
            f"Its Durable Objects hold more than {limit} MiB, the most a preview "
            "may keep, so it was stopped."
        )

    def _failed(self, slot: Slot, target: Target, message: str) -> None:
        slot.failed_version, slot.failed_at = target.version_id, time.monotonic()
        slot.error = message
        if not slot.alive:
            slot.state = "failed"
        self.say(f"preview {target.host}: version {target.version_id} failed to start")

    def _retire(self, old: subprocess.Popen) -> None:
        """Let a replaced process finish its requests, then make sure it is gone.

        It stops accepting once it handles SIGTERM, and an idle one exits at
        once. One still busy after RETIRE_WAIT drains in the background for up
        to DRAIN_SECONDS, answering on the connections it already holds, so
        the runtime's loop never waits on a tenant's process for long."""
        old.terminate()
        try:
            old.wait(timeout=RETIRE_WAIT)
        except subprocess.TimeoutExpired:
            self.retiring.append((old, time.monotonic() + DRAIN_SECONDS))

    def _end_process(self, slot: Slot) -> None:
        """Stop the slot's process, if it has one, and remove its cell."""
        if slot.process is not None:
            process.stop(slot.process, grace=0)
            if isinstance(slot.process, sandbox.Jailed):
                slot.process.cgroup.remove()
            slot.process = None

    def _close(self, slot: Slot) -> None:
        """Stop the process and remove the sockets: the edge then sends the
        Worker's visitors to our pages, which say why."""
        self._end_process(slot)
        if slot.control is not None:
            self.gateway.remove(slot.control)  # which closes it
            (slot.directory / "control.sock").unlink(missing_ok=True)
            slot.control = None
        for name in ("http", "admin"):
            listener = getattr(slot, name)
            if listener is not None:
                listener.close()
                (slot.directory / f"{name}.sock").unlink(missing_ok=True)
                setattr(slot, name, None)

    def _pause(self, slot: Slot) -> None:
        """Stop the process but keep its sockets: the next visitor waits in
        their queue until ``wake_visited`` starts it again."""
        self._end_process(slot)
        slot.state = "stopped"

    def _remove(self, slot: Slot) -> None:
        self._close(slot)
        self.say(f"preview {slot.key}: stopped (no longer live)")

    def reap(self) -> None:
        """Notice processes that died: restart Workers, or give up after a
        crash loop."""
        now = time.monotonic()
        draining = []
        for old, deadline in self.retiring:
            if old.poll() is not None:
                continue
            if now > deadline:
                old.kill()
            else:
                draining.append((old, deadline))
        self.retiring = draining
        for slot in self.slots.values():
            if slot.process is None or slot.process.poll() is None:
                continue
            code = slot.process.returncode
            slot.exit_reason = self._exit_reason(slot.process)
            slot.process = None
            slot.crashes = [t for t in slot.crashes if now - t < CRASH_WINDOW] + [now]
            self.say(
                f"preview {slot.key}: process exited with status {code}"
                + (f" ({slot.exit_reason})" if slot.exit_reason else "")
            )
            target = self.desired.targets.get(slot.key)
            if len(slot.crashes) >= CRASH_LIMIT or target is None:
                slot.state = "crashed"
                slot.error = "The Worker crashed repeatedly."
                self._close(slot)
                continue
            slot.state = "crashed"
            self.launch(slot, target)

    def stop_idle(self) -> None:
        """Stop Workers that used no CPU for the idle time; the next visit
        starts them again (``wake_visited``)."""
        idle = self.config.idle_seconds
        if idle <= 0:
            return
        now = time.monotonic()
        for slot in self.slots.values():
            running = slot.running
            if running is None:
                continue
            used = process.used_cpu(running)
            if used != slot.cpu_used:
                slot.cpu_used, slot.last_active = used, now
            elif now - slot.last_active > idle:
                self._pause(slot)
                self.say(f"preview {slot.key}: stopped while idle")

    def wake_visited(self) -> None:
        """Start each stopped Worker that a visitor is waiting for."""
        waiting = {
            slot.http.fileno(): slot
            for slot in self.slots.values()
            if slot.state == "stopped" and slot.http is not None and not slot.alive
        }
        if not waiting:
            return
        poller = select.poll()
        for fd in waiting:
            poller.register(fd, select.POLLIN)
        for fd, _event in poller.poll(0):
            slot = waiting[fd]
            target = self.desired.targets.get(slot.key)
            if target is not None and not target.limited:
                self.say(f"preview {slot.key}: visited while stopped, starting")
                self.launch(slot, target)

    # --- the edge -------------------------------------------------------------

    def _update_routes(self, desired: Desired) -> None:
        """Every live Worker's host; ``_publish_running`` routes those that
        have sockets, the pages backend answers for the rest."""
        domain = self.config.preview_domain.lower()
        self.hosts = {
            f"{target.host}.{domain}": key for key, target in desired.targets.items()
        }
        self.gone = dict(desired.gone)

    def _page_for(self, host: str) -> tuple[str, str]:
        """The edge's page for a host no Worker socket serves: its kind and
        detail (pages threads; reads only what the loop published)."""
        suffix = "." + self.config.preview_domain.lower()
        if not host.endswith(suffix):
            return "unknown", ""
        key = self.hosts.get(host)
        if key is None:
            subdomain = host[: -len(suffix)].partition(".")[2]
            return self.gone.get(subdomain, ("unknown", ""))
        state = self.published.get("workers", {}).get(key, {})
        if state.get("state") == "limited":
            return "limited", state.get("error", "")
        if state.get("state") in ("failed", "crashed"):
            return state["state"], ""
        return "starting", ""

    def _listen_for_failures(self) -> None:
        """HAProxy logs only abnormal requests, here; one that timed out
        waiting for a Worker's answer means the Worker is spinning."""
        log = self.at_edge.log
        log.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        listener.bind(str(log))
        log.chmod(0o660)

        def listen() -> None:
            while True:
                line = listener.recv(2048).decode(errors="replace").split()
                # "<backend> <termination state> <status>"
                if len(line) >= 2 and line[1].startswith("sH"):
                    host = self.routes.key_of(line[0])
                    key = self.hosts.get(host or "")
                    if key is not None:
                        self._tell("stuck", key)

        threading.Thread(target=listen, daemon=True, name="edge-log").start()

    def _tell(self, action: str, key: str) -> None:
        self.commands.put(control.Command(action, key, {}))

    # --- commands ---------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Every live Worker's state, by script id, with its account and name."""
        workers = {}
        for key, target in self.desired.targets.items():
            slot = self.slots.get(key)
            if target.limited:
                state = {"state": "limited", "error": target.limited}
            else:
                state = slot.summary() if slot else {"state": "stopped"}
            workers[key] = {
                **state,
                "account": target.account_id,
                "script": target.script_name,
            }
        return {"runtime": self.name, "sandbox": self.sandbox, "workers": workers}

    def _reconcile_command(self, _command: control.Command) -> dict[str, Any]:
        self.reconcile()
        return self.status()

    def _apply(self, command: control.Command) -> dict[str, Any]:
        """A deploy committed: converge now and say how the Worker started."""
        self.reconcile()
        target = self.desired.targets.get(command.arg)
        slot = self.slots.get(command.arg)
        if target is None:
            return {"state": "absent"}
        if target.limited:
            return {"state": "limited", "message": target.limited}
        return slot.summary() if slot else {"state": "stopped"}

    def _stuck(self, command: control.Command) -> dict[str, Any]:
        """A visitor waited past the limit: the process is spinning (workerd
        has no CPU limit), so kill it; ``reap`` starts a fresh one."""
        slot = self.slots.get(command.arg)
        limit = self.config.request_timeout
        running = slot.running if slot is not None else None
        if (
            slot is not None
            and running is not None
            and time.monotonic() - slot.started_at >= limit
        ):
            self.say(f"preview {slot.key}: stuck for {limit} s, restarting")
            running.kill()
            running.wait()
            self.reap()
        return {"state": slot.state if slot else "absent"}


def _bytes_under(folder: Path) -> int:
    """The bytes of the files below ``folder`` (none if it is not there)."""
    total = 0
    for root, _folders, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):  # gone meanwhile
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def _cut_log(path: Path) -> None:
    """Keep a log past LOG_LIMIT to its last LOG_KEPT bytes: what a Worker
    logs is in its events; the file is for why it failed or crashed. The
    process appends, so what it writes next goes after the kept end."""
    try:
        if path.stat().st_size <= LOG_LIMIT:
            return
        with open(path, "r+b") as log:
            log.seek(-LOG_KEPT, os.SEEK_END)
            kept = log.read()
            log.seek(0)
            log.write(b"(earlier lines cut)\n" + kept)
            log.truncate()
    except OSError:
        pass  # gone with its version
