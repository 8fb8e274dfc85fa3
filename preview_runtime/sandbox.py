"""One Worker's workerd in a cell of its own: its account's UID and GID, a
mount namespace holding nothing but its own files, no network, and a cgroup
that caps its memory, CPU and processes.

Why bubblewrap (Debian's ``bwrap``) and not our own namespace code: building
an empty root, binding a handful of files read-only into it and unsharing the
network, IPC, UTS and PID namespaces is exactly what bwrap does, in a small,
audited, maintained C program (Flatpak's). Run as root, it mounts; ``setpriv``
(util-linux), bound into the cell, then drops to the account's UID/GID with no
supplementary groups and ``no_new_privs`` before workerd starts. bwrap's own
``--uid`` needs a user namespace, which would map the Worker back to root on
the host; we want a plain unprivileged UID the kernel checks everywhere.

Cgroups are written directly (v2 where the host mounts it with controllers,
v1 otherwise): a small shell joins the cgroup and execs bwrap, so every
process of the cell, workerd's threads and children included, is counted from
its first instruction.

This module does not import Django.
"""

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids")
CPU_PERIOD_US = 100_000
# Where a Worker's things appear inside its cell.
INSIDE_VERSION = "/w"
INSIDE_OBJECTS = "/do"
INSIDE_CONTROL = "/run/control.sock"
INSIDE_WORKERD = "/bin/workerd"
INSIDE_SETPRIV = "/bin/setpriv"
# Joins the cgroups named before "--", then becomes the command after it.
_JOIN = (
    'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
)


@dataclass(frozen=True)
class Limits:
    memory_mb: int
    cpu_percent: int  # of one core
    pids: int


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int


def host_problem() -> str:
    """Why Workers cannot be sandboxed here, in one line ("" when they can)."""
    if os.geteuid() != 0:
        return "the runtime is not root, so it cannot switch Workers to their own UIDs"
    for tool in ("bwrap", "setpriv"):
        if not shutil.which(tool):
            return f"{tool} is not installed (bin/setup installs bubblewrap)"
    if cgroup_version() == 0:
        return "no writable cgroup (v2, or v1 memory, cpu, cpuacct and pids) here"
    probe = subprocess.run(
        ["bwrap", "--unshare-net", "--ro-bind", "/", "/", "true"],
        capture_output=True,
        timeout=10,
    )
    if probe.returncode != 0:
        said = probe.stderr.decode(errors="replace").strip()
        return f"bwrap cannot make namespaces here: {said}"
    return ""


def cgroup_version() -> int:
    """2 for a unified hierarchy with the controllers we need, 1 for writable
    v1 controllers, 0 for neither."""
    controllers = CGROUP_ROOT / "cgroup.controllers"
    if controllers.exists():
        have = set(controllers.read_text().split())
        if {"memory", "cpu", "pids"} <= have and os.access(CGROUP_ROOT, os.W_OK):
            return 2
    if all(os.access(CGROUP_ROOT / c, os.W_OK) for c in V1_CONTROLLERS):
        return 1
    return 0


def group_prefix(state_dir: Path) -> str:
    """The runtime's own cgroup folder: one per state dir, so two runtimes on
    one host never touch each other's Workers."""
    digest = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:12]
    return f"claimportal/{digest}"


class Cgroup:
    """One cell's cgroup, in every hierarchy that holds a controller of ours."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.version = cgroup_version()
        if self.version == 2:
            self.dirs = {c: CGROUP_ROOT / name for c in ("memory", "cpu", "pids")}
        else:
            self.dirs = {c: CGROUP_ROOT / c / name for c in V1_CONTROLLERS}

    def create(self, limits: Limits) -> None:
        """Make the cgroup with the memory and pids limits, and one whole core
        until ``throttle``: starting is capped in CPU time by the runtime
        (a start at the quota would take twice as long)."""
        for directory in set(self.dirs.values()):
            directory.mkdir(parents=True, exist_ok=True)
        memory = limits.memory_mb * 1024 * 1024
        if self.version == 2:
            self._enable_controllers()
            self._write("memory", "memory.max", memory)
            self._write("memory", "memory.swap.max", 0, optional=True)
            self._write("pids", "pids.max", limits.pids)
        else:
            self._write("memory", "memory.limit_in_bytes", memory)
            self._write("memory", "memory.memsw.limit_in_bytes", memory, optional=True)
            self._write("cpu", "cpu.cfs_period_us", CPU_PERIOD_US)
            self._write("pids", "pids.max", limits.pids)
        self.throttle(100)

    def throttle(self, percent: int) -> None:
        """Let the cell use ``percent`` of one core, from now on."""
        quota = CPU_PERIOD_US * percent // 100
        if self.version == 2:
            self._write("cpu", "cpu.max", f"{quota} {CPU_PERIOD_US}")
        else:
            self._write("cpu", "cpu.cfs_quota_us", quota)

    def _enable_controllers(self) -> None:
        """v2 hands controllers down level by level, from the root to us."""
        parts = Path(self.name).parts
        for depth in range(len(parts)):
            parent = CGROUP_ROOT.joinpath(*parts[:depth])
            (parent / "cgroup.subtree_control").write_text("+memory +cpu +pids")

    def _write(self, controller: str, name: str, value, optional=False) -> None:
        path = self.dirs[controller] / name
        if optional and not path.exists():
            return
        path.write_text(str(value))

    def _read(self, controller: str, name: str) -> str:
        try:
            return (self.dirs[controller] / name).read_text()
        except OSError:
            return ""

    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in sorted(set(self.dirs.values()))]

    def pids(self) -> list[int]:
        return [int(p) for p in self._read("pids", "cgroup.procs").split()]

    def cpu_seconds(self) -> float:
        if self.version == 2:
            stat = _fields(self._read("cpu", "cpu.stat"))
            return stat.get("usage_usec", 0) / 1e6
        usage = self._read("cpuacct", "cpuacct.usage").strip()
        return int(usage or 0) / 1e9

    def throttled_seconds(self) -> float:
        stat = _fields(self._read("cpu", "cpu.stat"))
        if self.version == 2:
            return stat.get("throttled_usec", 0) / 1e6
        return stat.get("throttled_time", 0) / 1e9

    def memory_bytes(self) -> int:
        """What the cell's processes hold privately (anonymous memory)."""
        stat = _fields(self._read("memory", "memory.stat"))
        return stat.get("anon" if self.version == 2 else "total_rss", 0)

    def out_of_memory(self) -> bool:
        """Whether the kernel killed a process of the cell for its memory."""
        events = "memory.events" if self.version == 2 else "memory.oom_control"
        return _fields(self._read("memory", events)).get("oom_kill", 0) > 0

    def kill(self) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def remove(self) -> None:
        """Delete the cgroup once its processes are gone (else a later sweep
        does): killed processes leave it a moment after they are reaped."""
        for _attempt in range(20):
            for directory in set(self.dirs.values()):
                try:
                    directory.rmdir()
                except FileNotFoundError:
                    pass
                except OSError:
                    continue
            if not any(d.exists() for d in self.dirs.values()):
                return
            time.sleep(0.05)


def _fields(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def remove_empty_groups(prefix: str, *, itself: bool = False) -> None:
    """Delete the empty cgroups under ``prefix`` (cells that have exited), and
    with ``itself`` the prefix's own (the runtime stops)."""
    version = cgroup_version()
    roots = [CGROUP_ROOT] if version == 2 else [CGROUP_ROOT / c for c in V1_CONTROLLERS]
    for root in roots:
        base = root / prefix
        if not base.is_dir():
            continue
        for child in base.iterdir():  # cells sit right below the prefix
            if child.is_dir():
                with contextlib.suppress(OSError):
                    child.rmdir()
        if itself:
            with contextlib.suppress(OSError):
                base.rmdir()


def _libraries(binary: Path) -> list[str]:
    """The shared libraries ``binary`` loads (as ldd names them)."""
    listed = subprocess.run(
        ["ldd", str(binary)], capture_output=True, text=True, timeout=30
    ).stdout
    return sorted(
        {word for word in listed.split() if word.startswith("/") and word != "=>"}
    )


_LIBRARIES: dict[str, list[str]] = {}


def _bind_libraries(binaries: list[Path]) -> list[str]:
    args: list[str] = []
    dirs: set[str] = set()
    files: set[str] = set()
    for binary in binaries:
        key = str(binary)
        if key not in _LIBRARIES:
            _LIBRARIES[key] = _libraries(binary)
        files.update(_LIBRARIES[key])
    for name in sorted(files):
        parent = Path(name).parent
        while str(parent) != "/" and str(parent) not in dirs:
            dirs.add(str(parent))
            parent = parent.parent
    for directory in sorted(dirs, key=len):
        # bwrap would make missing folders 0700 (root's): the UID could not pass.
        args += ["--perms", "0755", "--dir", directory]
    for name in sorted(files):
        args += ["--ro-bind", os.path.realpath(name), name]
    return args


def command(
    *,
    binary: Path,
    identity: Identity,
    cgroup: Cgroup,
    version_dir: Path,
    objects_dir: Path | None,
    control_socket: Path | None,
    workerd_args: list[str],
) -> list[str]:
    """The argv that starts workerd inside the cell; ``workerd_args`` use the
    inside paths (INSIDE_*)."""
    setpriv = Path(shutil.which("setpriv") or "/usr/bin/setpriv")
    bwrap = [
        shutil.which("bwrap") or "bwrap",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-pid",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        *_bind_libraries([binary, setpriv]),
        "--perms", "0755", "--dir", "/bin",
        "--ro-bind", str(binary), INSIDE_WORKERD,
        "--ro-bind", str(setpriv), INSIDE_SETPRIV,
        "--ro-bind", str(version_dir), INSIDE_VERSION,
        "--dev", "/dev",
        "--proc", "/proc",
        "--tmpfs", "/tmp",  # noqa: S108 - the cell's own, empty
    ]  # fmt: skip
    if objects_dir is not None:
        bwrap += ["--bind", str(objects_dir), INSIDE_OBJECTS]
    if control_socket is not None:
        bwrap += ["--perms", "0755", "--dir", "/run"]
        bwrap += ["--ro-bind", str(control_socket), INSIDE_CONTROL]
    bwrap += [
        "--chdir", INSIDE_VERSION,
        "--",
        INSIDE_SETPRIV,
        f"--reuid={identity.uid}",
        f"--regid={identity.gid}",
        "--clear-groups",
        "--no-new-privs",
        "--inh-caps=-all",
        "--bounding-set=-all",
        INSIDE_WORKERD,
        *workerd_args,
    ]  # fmt: skip
    return ["/bin/sh", "-c", _JOIN, "cgroup-join", *cgroup.procs_files(), "--", *bwrap]


class Jailed(subprocess.Popen):
    """A cell: the process we hold is bwrap, workerd runs below it as the
    account's UID. SIGTERM goes to workerd itself (so it drains its requests);
    SIGKILL takes the whole cgroup down."""

    def __init__(self, args, *, cgroup: Cgroup, identity: Identity, **options):
        self.cgroup, self.identity = cgroup, identity
        super().__init__(args, **options)

    def send_signal(self, sig: int) -> None:
        if self.poll() is not None:
            return
        if sig == signal.SIGKILL:
            self.cgroup.kill()
            super().send_signal(sig)
            return
        for pid in self.cgroup.pids():
            try:
                if os.stat(f"/proc/{pid}").st_uid == self.identity.uid:
                    os.kill(pid, sig)
            except (FileNotFoundError, ProcessLookupError):
                pass


def own(path: Path, identity: Identity) -> None:
    """Give ``path`` and everything below it to the identity: folders 0700,
    files 0600 (what workerd reads is the Worker's own, nobody else's)."""
    paths = [path, *path.rglob("*")] if path.is_dir() else [path]
    for item in paths:
        os.chown(item, identity.uid, identity.gid, follow_symlinks=False)
        if not item.is_symlink():
            item.chmod(0o700 if item.is_dir() else 0o600)
