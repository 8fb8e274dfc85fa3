"""Which preview host the edge sends to which Worker socket, kept in step with
HAProxy at run time (no reload, so no connection is ever cut for a deploy).

Every runtime has a folder of its own in the edge's, ``runtimes/<name>/``,
and routes only the hosts it holds (the accounts placed on it), so several
runtimes share one edge. Each routed host holds one of the runtime's slots:
``slots/<n>.sock`` is a symlink to its Worker's ``http.sock`` (connect()
follows it), and the runtime's ``hosts.map`` says ``host <name>-s<n>``; a host
it holds that has no socket yet says ``<name>-pages``, the runtime's own pages.
The map is the file HAProxy loads when it starts and, while it runs, is
replaced whole and atomically over the admin socket (prepare, add, commit).
"""

import logging
import os
import socket
from collections import deque
from collections.abc import Set
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger("claimportal.edge")

BATCH = 40  # CLI commands per connection (a line must fit HAProxy's buffer)


@dataclass(frozen=True)
class EdgePaths:
    """The edge's files, shared by HAProxy and the preview supervisor."""

    root: Path

    config = property(lambda self: self.root / "haproxy.cfg")
    admin = property(lambda self: self.root / "admin.sock")  # the runtime API
    master = property(lambda self: self.root / "master.sock")
    errors = property(lambda self: self.root / "errors")

    def runtime(self, name: str) -> "RuntimePaths":
        return RuntimePaths(self.root / "runtimes" / name, name)


@dataclass(frozen=True)
class RuntimePaths:
    """One runtime's files in the edge's folder, and its backends' names."""

    root: Path
    name: str

    hosts = property(lambda self: self.root / "hosts.map")
    pages = property(lambda self: self.root / "pages.sock")  # its pages backend
    log = property(lambda self: self.root / "log.sock")  # abnormal requests only
    pages_backend = property(lambda self: f"{self.name}-pages")

    def slot(self, number: int) -> Path:
        return self.root / "slots" / f"{number}.sock"

    def backend(self, number: int) -> str:
        return f"{self.name}-s{number}"


def cli(admin: Path, command: str, *, timeout: float = 5) -> str:
    """One line of commands (";"-separated) on HAProxy's admin socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(admin))
        sock.sendall(command.encode() + b"\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer.decode(errors="replace")


class Routes:
    def __init__(self, edge: EdgePaths, runtime: RuntimePaths, *, slots: int) -> None:
        self.admin = edge.admin
        self.paths = runtime
        self.slots: dict[str, int] = {}  # host -> slot
        self.targets: dict[int, Path] = {}  # slot -> the socket it points at
        self.free = deque(range(slots))  # the longest free first
        self.pushed: dict[str, str] | None = None  # what HAProxy has

    def key_of(self, backend: str) -> str | None:
        """The host one of this runtime's slot backends serves, if any."""
        for host, number in self.slots.items():
            if self.paths.backend(number) == backend:
                return host
        return None

    def update(self, wanted: dict[str, Path], held: Set[str] = frozenset()) -> None:
        """Route exactly ``wanted`` (host -> Worker socket), and the other
        hosts this runtime ``held`` to its own pages; hosts it does not hold
        are left to the other runtimes (or the edge's shared pages)."""
        for host in [h for h in self.slots if h not in wanted]:
            self.free.append(self.slots.pop(host))
        for host, target in wanted.items():
            if host not in self.slots:
                if not self.free:
                    logger.error("edge: no free slot for %s", host)
                    continue
                self.slots[host] = self.free.popleft()
            number = self.slots[host]
            if self.targets.get(number) != target:
                link = self.paths.slot(number)
                temporary = link.with_suffix(".new")
                temporary.unlink(missing_ok=True)
                os.symlink(target, temporary)
                os.replace(temporary, link)
                self.targets[number] = target
        entries = {host: self.paths.pages_backend for host in held}
        entries |= {h: self.paths.backend(n) for h, n in self.slots.items()}
        if entries != self.pushed:
            self._write(entries)
            self.pushed = entries if self._push(entries) else None

    def _write(self, entries: dict[str, str]) -> None:
        temporary = self.paths.hosts.with_suffix(".new")
        temporary.write_text("".join(f"{h} {b}\n" for h, b in sorted(entries.items())))
        os.replace(temporary, self.paths.hosts)

    def _push(self, entries: dict[str, str]) -> bool:
        """Replace the running edge's map in one step; False if no edge runs
        (it reads the file when it starts)."""
        admin, name = self.admin, str(self.paths.hosts)
        try:
            answer = cli(admin, f"prepare map {name}")
            version = answer.rsplit(":", 1)[-1].strip()
            if not version.isdigit():
                logger.error("edge: cannot prepare the map: %s", answer.strip())
                return False
            adds = [f"add map @{version} {name} {h} {b}" for h, b in entries.items()]
            for start in range(0, len(adds), BATCH):
                cli(admin, ";".join(adds[start : start + BATCH]))
            cli(admin, f"commit map @{version} {name}")
            return True
        except OSError:
            return False
