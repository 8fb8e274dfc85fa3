"""What the runtime should be doing, as plain data: the Workers it serves
and the subdomains that answer "suspended", "expired" or "deleted". The
Django side reads it from the database (``services.state``); the supervisor
applies it, so any crash or restart converges on the database."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Target:
    """One Worker the runtime should serve."""

    key: str  # the runtime's name for the script: its primary key
    account_id: str
    script_name: str
    host: str  # "<script>.<subdomain>"
    version_id: str
    banner: str  # HTML injected into pages of unclaimed Workers
    has_durable_objects: bool
    cron: tuple[str, ...]
    limited: str = ""  # why it may not run now (a limit was reached)


@dataclass(frozen=True)
class Desired:
    targets: dict[str, Target]
    gone: dict[str, tuple[str, str]]  # subdomain -> (state, detail)
    # What may keep files on the runtime's disk: the accounts it holds that
    # are not purged, and (account id, script key) of every script they have.
    accounts: frozenset[str] = field(default_factory=frozenset)
    scripts: frozenset[tuple[str, str]] = field(default_factory=frozenset)
