"""Every knob of the runtime as plain data. The runtime reads no settings
module: ``manage.py preview_runtime`` fills this in from Django's settings
(``preview_runtime.services.wiring``) and hands it to the supervisor."""

from dataclasses import dataclass
from pathlib import Path

from .sandbox import Limits


@dataclass(frozen=True)
class RuntimeConfig:
    name: str  # this runtime's own name (several may share one edge)
    state_dir: Path  # sockets, rendered versions, logs, Durable Object data
    edge_dir: Path  # the edge's files: host map, slot links, pages socket
    edge_slots: int  # slot backends the edge has for Workers
    preview_domain: str  # hosts are <script>.<subdomain>.<preview_domain>
    binary: Path  # the pinned workerd
    sandbox: bool  # a cell per Worker (own UID, namespaces, cgroup)
    edge_gid: int  # the group that may connect to Workers' http.sock
    limits: Limits  # a cell's memory, CPU quota and pids
    heap_mb: int  # V8's heap cap per Worker
    startup_timeout: float  # seconds a Worker may take to listen
    request_timeout: float  # seconds before a request's answer must begin
    reconcile_seconds: float  # how often the desired state is read again
    idle_seconds: float  # stop a Worker idle this long (0: never)
    cpu_pinned_seconds: float  # stop a Worker at its whole quota this long
    storage_mb: int  # a Worker's Durable Object data, and its largest file
    # The binding endpoints: a WSGI app served by gunicorn from project_dir.
    bindings_app: str
    project_dir: Path
    binding_processes: int
    binding_threads: int
    binding_concurrency: int  # calls one account may have under way
    binding_wait_seconds: float  # how long a call over that waits
    binding_call_seconds: float  # the longest one binding call may run
