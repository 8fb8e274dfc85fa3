"""Starting workerd: the binary, its version, the sandbox, and knowing when it
listens (or why it did not).

workerd writes one JSON line per socket to ``--control-fd`` once it accepts
connections, so there is no polling and no port race; if it exits first, its
output says why. Sockets are always created by us and passed as descriptors:
the runtime keeps them open across restarts, so visitors are queued, never
refused, while a Worker's process is replaced.
"""

import ctypes
import functools
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import sandbox
from .render import WorkerPaths

JS_ROOT = Path(__file__).resolve().parent / "js"  # copied, never read
STARTUP_CPU_SECONDS = 2.0
# What workerd prints that says nothing about the Worker (and names our paths):
# its own source locations, stack addresses and error ids.
_NOISE = re.compile(
    r"^Unable to find and open the program executable.*$|^stack: .*$"
    r"|; sentryErrorContext = .*$|^workerd/\S+: error: (e = \S+: failed: )?",
    re.M,
)


class RuntimeUnavailable(Exception):
    """workerd cannot run here (not installed, the wrong version, no sandbox
    where one is required)."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class StartupFailed(Exception):
    """workerd exited or stayed silent instead of listening."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


def node_tools_version(project_dir: Path) -> str:
    """The pinned workerd version (``bin/node-tools.env``), e.g. 1.20261117.1."""
    env = project_dir / "bin" / "node-tools.env"
    found = re.search(r"^WORKERD_VERSION=(\S+)$", env.read_text(), re.M)
    if found is None:
        raise RuntimeUnavailable("bin/node-tools.env does not pin WORKERD_VERSION.")
    return found.group(1)


def workerd_binary(*, configured: str, node_tools: str) -> Path:
    """Where the pinned workerd is (``configured``, else inside the
    ``node_tools`` folder); RuntimeUnavailable when it is not installed."""
    if configured:
        path = Path(configured)
    else:
        path = Path(node_tools) / "node_modules" / "workerd" / "bin" / "workerd"
    if not tools_ok(path):
        raise RuntimeUnavailable(
            "workerd is not installed: run bin/install-node-tools and set "
            "CLAIMPORTAL_NODE_TOOLS (or CLAIMPORTAL_WORKERD_BIN)."
        )
    return path


def tools_ok(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def check_workerd_version(binary: Path, *, project_dir: Path) -> str:
    """Refuse a workerd other than the pinned one: the experimental features we
    rely on (assets service, extra handlers) may change between releases."""
    printed = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, timeout=30
    ).stdout.strip()
    date = node_tools_version(project_dir).split(".")[1]
    expected = f"workerd {date[:4]}-{date[4:6]}-{date[6:]}"
    if printed != expected:
        raise RuntimeUnavailable(
            f"workerd prints {printed!r}, but {expected!r} is pinned in "
            "bin/node-tools.env; run bin/install-node-tools."
        )
    return printed


def sandbox_problem() -> str:
    """Why Workers cannot run in cells here ("" when they can)."""
    return sandbox.host_problem()


def wanted_sandbox(wanted: str) -> bool:
    """Whether Workers (and deploy checks) run in cells: ``on`` refuses to
    run without, ``auto`` uses them where the host can, ``off`` never
    (development only)."""
    wanted = (wanted or "auto").lower()
    if wanted == "off":
        return False
    problem = sandbox_problem()
    if problem and wanted == "on":
        raise RuntimeUnavailable(
            f"CLAIMPORTAL_PREVIEW_SANDBOX=on, but Workers cannot be sandboxed: "
            f"{problem}."
        )
    return not problem


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _in_child(file_bytes: int, *, die: bool) -> None:  # pragma: no cover - child
    """A Worker's process: no file past ``file_bytes`` (the kernel ends a
    process that writes past it) and no core dump; with ``die``, it goes
    when the runtime does (a cell's bwrap sees to that itself)."""
    if file_bytes:
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if die:
        _die_with_parent()


def unix_listener(path: Path, *, owner: tuple[int, int] | None = None) -> socket.socket:
    """A listening unix socket; ``owner`` (uid, gid) alone may connect
    (mode 0660), else anyone who can reach its folder may."""
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    if owner is None:
        os.chmod(path, 0o666)  # noqa: S103 - the directory decides who may connect
    else:
        os.chown(path, *owner)
        os.chmod(path, 0o660)
    listener.listen(512)
    return listener


def install_helpers(directory: Path) -> None:
    """Copy our own Workers (bridge, trigger, banner ...) next to a version's
    config: workerd reads nothing from the checkout."""
    target = directory / "js"
    target.mkdir(parents=True, exist_ok=True)
    for source in JS_ROOT.glob("*.js"):
        shutil.copyfile(source, target / source.name)


def worker_paths(
    *, directory: Path, control_socket: Path, objects: Path, cell: bool
) -> WorkerPaths:
    """Where workerd finds a version's things: the host's paths, or the ones
    its cell shows (the version folder, its Durable Object folder and the
    binding endpoints' socket, bound in by the sandbox)."""
    if cell:
        return WorkerPaths(
            control_socket=sandbox.INSIDE_CONTROL,
            durable_objects=sandbox.INSIDE_OBJECTS,
            assets=f"{sandbox.INSIDE_VERSION}/assets",
        )
    return WorkerPaths(
        control_socket=str(control_socket),
        durable_objects=str(objects),
        assets=str(directory / "assets"),
    )


@dataclass(frozen=True)
class Cell:
    """Where a sandboxed workerd runs: as whom, in which cgroup, with which
    of the runtime's files (its version folder is the config's)."""

    identity: sandbox.Identity
    cgroup: sandbox.Cgroup
    limits: sandbox.Limits  # its CPU quota applies once it listens
    objects: Path | None = None  # its Durable Object folder, writable
    control: Path | None = None  # the binding endpoints' socket


def make_cell(
    *,
    identity: sandbox.Identity,
    cgroup: str,
    limits: sandbox.Limits,
    objects: Path | None = None,
    control: Path | None = None,
) -> Cell:
    """A cell with ``limits``, its cgroup made and empty (a whole core till
    the Worker listens)."""
    group = sandbox.Cgroup(cgroup)
    group.create(limits)
    return Cell(identity, group, limits, objects, control)


@dataclass
class Started:
    process: subprocess.Popen
    startup_ms: int


def spawn(
    *,
    config: Path,
    sockets: dict[str, socket.socket],
    log: Path,
    cell: Cell | None,
    timeout: float,
    binary: Path,
    file_bytes: int = 0,
) -> Started:
    """Start ``workerd serve config`` on the given listening sockets (in
    ``cell`` when given) and wait until it accepts on all of them. Raises
    StartupFailed with workerd's own words (or a time-out) after killing it.

    Everything workerd reads is in the config's folder (modules, assets, our
    helpers under ``js/``): inside a cell that folder is all it sees.
    ``file_bytes`` (when given) is the most any file it writes may hold: its
    log, each Durable Object's database; writing past it ends the process."""
    read_end, write_end = os.pipe()
    fds = [write_end, *(s.fileno() for s in sockets.values())]
    folder = sandbox.INSIDE_VERSION if cell else str(config.parent)
    arguments = [
        "serve",
        f"{folder}/{config.name}",
        "--experimental",
        f"--control-fd={write_end}",
        "--import-path",
        folder,
        *(f"--socket-fd={name}={s.fileno()}" for name, s in sockets.items()),
    ]
    began = time.monotonic()
    with open(log, "ab") as output:
        options: dict[str, Any] = {
            "pass_fds": fds,
            "stdin": subprocess.DEVNULL,
            "stdout": output,
            "stderr": subprocess.STDOUT,
            "cwd": config.parent,
        }
        if cell is None:
            process = subprocess.Popen(
                [str(binary), *arguments],
                preexec_fn=functools.partial(_in_child, file_bytes, die=True),
                **options,
            )
        else:
            process = sandbox.Jailed(
                sandbox.command(
                    binary=binary,
                    identity=cell.identity,
                    cgroup=cell.cgroup,
                    version_dir=config.parent,
                    objects_dir=cell.objects,
                    control_socket=cell.control,
                    workerd_args=arguments,
                ),
                cgroup=cell.cgroup,
                identity=cell.identity,
                start_new_session=True,
                preexec_fn=functools.partial(_in_child, file_bytes, die=False),
                **options,
            )
    os.close(write_end)
    try:
        _await_listening(read_end, set(sockets), process, began + timeout)
        if cell is not None:
            cell.cgroup.throttle(cell.limits.cpu_percent)
    except StartupFailed as failure:
        stop(process, grace=0)
        if cell is not None and cell.cgroup.out_of_memory():
            raise StartupFailed(
                f"The Worker used more than its {cell.limits.memory_mb} MiB of "
                "memory while starting."
            ) from None
        said = _NOISE.sub("", log.read_text(errors="replace")[-4000:])
        tail = re.sub(r"\n\s*\n", "\n", said).strip()
        raise StartupFailed(tail or failure.message) from None
    finally:
        os.close(read_end)
    return Started(process, round((time.monotonic() - began) * 1000))


def used_cpu(process: subprocess.Popen) -> float:
    """CPU seconds a Worker's process (its whole cell, when it has one) used."""
    if isinstance(process, sandbox.Jailed):
        return process.cgroup.cpu_seconds()
    return cpu_seconds(process.pid)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process used so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _await_listening(
    fd: int, names: set[str], process: subprocess.Popen, deadline: float
) -> None:
    buffer = b""
    # poll, not select: a busy runtime holds more descriptors than select takes.
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while names:
        if time.monotonic() > deadline:
            raise StartupFailed("The Worker did not start within the time limit.")
        # Startup is limited in CPU time, not wall time: a busy host slows a
        # start down, a loop at the top level of the script burns CPU.
        if used_cpu(process) > STARTUP_CPU_SECONDS:
            raise StartupFailed(
                f"The Worker's startup used more than {STARTUP_CPU_SECONDS} s of "
                "CPU time (is there an endless loop at the top level?)."
            )
        if not poller.poll(100):
            continue
        chunk = os.read(fd, 4096)
        if not chunk:  # the process closed its end: it exited
            process.wait(timeout=5)
            raise StartupFailed(f"workerd exited with status {process.returncode}.")
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            event = json.loads(line or b"{}")
            if event.get("event") == "listen":
                names.discard(event.get("socket"))


def stop(process: subprocess.Popen, *, grace: float) -> None:
    """SIGTERM (workerd drains in-flight requests), then SIGKILL after ``grace``."""
    if process.poll() is not None:
        return
    if grace > 0:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            pass
    process.kill()
    process.wait()
