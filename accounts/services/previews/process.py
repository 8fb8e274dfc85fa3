"""Starting workerd: the binary, its version, the sandbox, and knowing when it
listens (or why it did not).

workerd writes one JSON line per socket to ``--control-fd`` once it accepts
connections, so there is no polling and no port race; if it exits first, its
output says why. Sockets are always created by us and passed as descriptors:
the runtime keeps them open across restarts, so visitors are queued, never
refused, while a Worker's process is replaced.
"""

import ctypes
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from accounts.exceptions import DomainError

JS_ROOT = Path(__file__).resolve().parents[2] / "previews"  # holds js/
NOBODY = 65534
STARTUP_CPU_SECONDS = 2.0
# What workerd prints that says nothing about the Worker (and names our paths):
# its own source locations, stack addresses and error ids.
_NOISE = re.compile(
    r"^Unable to find and open the program executable.*$|^stack: .*$"
    r"|; sentryErrorContext = .*$|^workerd/\S+: error: (e = \S+: failed: )?",
    re.M,
)


class RuntimeUnavailable(DomainError):
    code = 10503
    status = 503
    message = "The preview runtime is not available."


class StartupFailed(Exception):
    """workerd exited or stayed silent instead of listening."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


def node_tools_version() -> str:
    """The pinned workerd version (``bin/node-tools.env``), e.g. 1.20261117.1."""
    env = Path(settings.BASE_DIR) / "bin" / "node-tools.env"
    found = re.search(r"^WORKERD_VERSION=(\S+)$", env.read_text(), re.M)
    if found is None:
        raise RuntimeUnavailable("bin/node-tools.env does not pin WORKERD_VERSION.")
    return found.group(1)


def workerd_binary() -> Path:
    """Where the pinned workerd is; RuntimeUnavailable when it is not installed."""
    configured = settings.CLAIMPORTAL_WORKERD_BIN
    if configured:
        path = Path(configured)
    else:
        tools = os.environ.get("CLAIMPORTAL_NODE_TOOLS", "")
        path = Path(tools) / "node_modules" / "workerd" / "bin" / "workerd"
    if not tools_ok(path):
        raise RuntimeUnavailable(
            "workerd is not installed: run bin/install-node-tools and set "
            "CLAIMPORTAL_NODE_TOOLS (or CLAIMPORTAL_WORKERD_BIN)."
        )
    return path


def tools_ok(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def check_workerd_version(binary: Path) -> str:
    """Refuse a workerd other than the pinned one: the experimental features we
    rely on (assets service, extra handlers) may change between releases."""
    printed = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, timeout=30
    ).stdout.strip()
    date = node_tools_version().split(".")[1]
    expected = f"workerd {date[:4]}-{date[4:6]}-{date[6:]}"
    if printed != expected:
        raise RuntimeUnavailable(
            f"workerd prints {printed!r}, but {expected!r} is pinned in "
            "bin/node-tools.env; run bin/install-node-tools."
        )
    return printed


def sandbox_available() -> bool:
    """Whether workerd can run as nobody in an empty network namespace here."""
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("setpriv")):
        return False
    probe = subprocess.run(
        ["unshare", "--net", "--", "true"], capture_output=True, timeout=10
    )
    return probe.returncode == 0


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def unix_listener(path: Path) -> socket.socket:
    """A listening unix socket that anyone on this host may connect to (the
    sandboxed runtime runs as nobody); access is decided by the directory."""
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    os.chmod(path, 0o666)  # noqa: S103 - the directory decides who may connect
    listener.listen(512)
    return listener


@dataclass
class Started:
    process: subprocess.Popen
    startup_ms: int


def spawn(
    *,
    config: Path,
    sockets: dict[str, socket.socket],
    log: Path,
    sandbox: bool,
    timeout: float,
    binary: Path | None = None,
) -> Started:
    """Start ``workerd serve config`` on the given listening sockets and wait
    until it accepts on all of them. Raises StartupFailed with workerd's own
    words (or a time-out) after killing the process."""
    binary = binary or workerd_binary()
    read_end, write_end = os.pipe()
    fds = [write_end, *(s.fileno() for s in sockets.values())]
    command = [
        str(binary),
        "serve",
        str(config),
        "--experimental",
        f"--control-fd={write_end}",
        "--import-path",
        str(JS_ROOT),
        *(f"--socket-fd={name}={s.fileno()}" for name, s in sockets.items()),
    ]
    if sandbox:
        command = [
            "unshare",
            "--net",
            "--",
            "setpriv",
            "--pdeathsig",
            "SIGKILL",
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            "--no-new-privs",
            *command,
        ]
    began = time.monotonic()
    with open(log, "ab") as output:
        process = subprocess.Popen(
            command,
            pass_fds=fds,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=config.parent,
            preexec_fn=None if sandbox else _die_with_parent,
        )
    os.close(write_end)
    try:
        _await_listening(read_end, set(sockets), process, began + timeout)
    except StartupFailed as failure:
        stop(process, grace=0)
        said = _NOISE.sub("", log.read_text(errors="replace")[-4000:])
        tail = re.sub(r"\n\s*\n", "\n", said).strip()
        raise StartupFailed(tail or failure.message) from None
    finally:
        os.close(read_end)
    return Started(process, round((time.monotonic() - began) * 1000))


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
    while names:
        if time.monotonic() > deadline:
            raise StartupFailed("The Worker did not start within the time limit.")
        # Startup is limited in CPU time, not wall time: a busy host slows a
        # start down, a loop at the top level of the script burns CPU.
        if cpu_seconds(process.pid) > STARTUP_CPU_SECONDS:
            raise StartupFailed(
                f"The Worker's startup used more than {STARTUP_CPU_SECONDS} s of "
                "CPU time (is there an endless loop at the top level?)."
            )
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
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
