"""The runtime's knobs, read from Django's settings: the one place that turns
``CLAIMPORTAL_PREVIEW_*`` into the plain values the core takes."""

import grp
import os
import re
from pathlib import Path

from django.conf import settings

from preview_runtime import process, sandbox
from preview_runtime.config import RuntimeConfig

BINDINGS_APP = "preview_runtime.endpoints.wsgi:application"


def workerd_binary() -> Path:
    """The pinned workerd (CLAIMPORTAL_WORKERD_BIN, else CLAIMPORTAL_NODE_TOOLS);
    RuntimeUnavailable when it is not installed."""
    return process.workerd_binary(
        configured=settings.CLAIMPORTAL_WORKERD_BIN,
        node_tools=os.environ.get("CLAIMPORTAL_NODE_TOOLS", ""),
    )


def check_workerd_version(binary: Path) -> str:
    return process.check_workerd_version(binary, project_dir=Path(settings.BASE_DIR))


def wanted_sandbox() -> bool:
    """CLAIMPORTAL_PREVIEW_SANDBOX: whether Workers run in cells here."""
    return process.wanted_sandbox(settings.CLAIMPORTAL_PREVIEW_SANDBOX)


def limits() -> sandbox.Limits:
    return sandbox.Limits(
        memory_mb=settings.CLAIMPORTAL_PREVIEW_MEMORY_MB,
        cpu_percent=settings.CLAIMPORTAL_PREVIEW_CPU_PERCENT,
        pids=settings.CLAIMPORTAL_PREVIEW_PIDS,
    )


def edge_slots() -> int:
    """The backends Workers' hosts are routed through (CLAIMPORTAL_EDGE_SLOTS)."""
    return max(settings.CLAIMPORTAL_EDGE_SLOTS, 8)


class NoSuchGroup(ValueError):
    pass


class BadRuntimeName(ValueError):
    pass


def runtime_name() -> str:
    """This runtime's name (CLAIMPORTAL_PREVIEW_RUNTIME_NAME): it names the
    runtime's row, its folder in the edge's and its HAProxy backends."""
    name = settings.CLAIMPORTAL_PREVIEW_RUNTIME_NAME
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,39}", name or ""):
        raise BadRuntimeName(
            f"CLAIMPORTAL_PREVIEW_RUNTIME_NAME is {name!r}: use 1 to 40 lower-case "
            "letters, digits and dashes."
        )
    return name


def edge_gid() -> int:
    """The group of the edge (CLAIMPORTAL_PREVIEW_EDGE_GROUP: a name or gid;
    unset, the runtime's own)."""
    wanted = settings.CLAIMPORTAL_PREVIEW_EDGE_GROUP
    if not wanted:
        return os.getgid()
    if wanted.isdigit():
        return int(wanted)
    try:
        return grp.getgrnam(wanted).gr_gid
    except KeyError:
        raise NoSuchGroup(
            f"CLAIMPORTAL_PREVIEW_EDGE_GROUP names {wanted!r}, no such group."
        ) from None


def runtime_config(*, binary: Path, sandboxed: bool) -> RuntimeConfig:
    """Everything the supervisor is told, from the settings in force."""
    return RuntimeConfig(
        name=runtime_name(),
        state_dir=Path(settings.CLAIMPORTAL_PREVIEW_STATE_DIR),
        edge_dir=Path(settings.CLAIMPORTAL_EDGE_DIR),
        edge_slots=edge_slots(),
        preview_domain=settings.CLAIMPORTAL_PREVIEW_DOMAIN,
        binary=binary,
        sandbox=sandboxed,
        edge_gid=edge_gid(),
        limits=limits(),
        heap_mb=settings.CLAIMPORTAL_PREVIEW_HEAP_MB,
        startup_timeout=settings.CLAIMPORTAL_PREVIEW_STARTUP_TIMEOUT_SECONDS,
        request_timeout=settings.CLAIMPORTAL_PREVIEW_REQUEST_TIMEOUT_SECONDS,
        reconcile_seconds=settings.CLAIMPORTAL_PREVIEW_RECONCILE_SECONDS,
        idle_seconds=settings.CLAIMPORTAL_PREVIEW_IDLE_SECONDS,
        storage_mb=settings.CLAIMPORTAL_PREVIEW_STORAGE_MB,
        cpu_pinned_seconds=settings.CLAIMPORTAL_PREVIEW_CPU_PINNED_SECONDS,
        bindings_app=BINDINGS_APP,
        project_dir=Path(settings.BASE_DIR),
        binding_processes=settings.CLAIMPORTAL_PREVIEW_BINDING_PROCESSES,
        binding_threads=settings.CLAIMPORTAL_PREVIEW_BINDING_THREADS,
        binding_concurrency=settings.CLAIMPORTAL_PREVIEW_BINDING_CONCURRENCY,
        binding_wait_seconds=settings.CLAIMPORTAL_PREVIEW_BINDING_WAIT_SECONDS,
        binding_call_seconds=settings.CLAIMPORTAL_D1_QUERY_SECONDS,
    )
