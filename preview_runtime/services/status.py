"""What people see of previews: whether each Worker is running right now, and
how much Durable Object data the runtime keeps for an account."""

from dataclasses import dataclass, field
from pathlib import Path

from accounts.models import CloudAccount

from . import placement
from .client import ask_runtime

LABELS = {
    "running": "Running",
    "stopped": "Stopped while idle; starts on the next visit",
    "failed": "Failed to start",
    "crashed": "Crashed; restarting",
    "limited": "Not running: a limit on live previews was reached",
}


@dataclass(frozen=True)
class ObjectStorage:
    objects: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class PreviewStatus:
    # script name -> (state, label, error): why it failed, for its owner
    workers: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    # Durable Object namespace id -> what its objects keep on disk
    durable_objects: dict[str, ObjectStorage] = field(default_factory=dict)
    runtime_off: bool = False

    @property
    def rows(self) -> list[tuple[str, str, str, str]]:
        """(script, state, label, error) by script name, for a page."""
        return [(name, *self.workers[name]) for name in sorted(self.workers)]

    @property
    def objects(self) -> int:
        return sum(usage.objects for usage in self.durable_objects.values())

    @property
    def object_bytes(self) -> int:
        return sum(usage.bytes for usage in self.durable_objects.values())


def _object_storage(account_dir: Path) -> dict[str, ObjectStorage]:
    """Objects (one SQLite file each) and bytes per namespace directory."""
    usage: dict[str, ObjectStorage] = {}
    for namespace in account_dir.glob("*/do/*"):
        files = [p for p in namespace.iterdir() if p.is_file()]
        # <id>.sqlite (with -wal and -shm beside it); metadata.* is workerd's.
        objects = {p.name.split(".", 1)[0] for p in files} - {"metadata"}
        previous = usage.get(namespace.name, ObjectStorage())
        usage[namespace.name] = ObjectStorage(
            objects=previous.objects + len(objects),
            bytes=previous.bytes + sum(p.stat().st_size for p in files),
        )
    return usage


def preview_status(
    *, account: CloudAccount, state_dir: Path | None = None
) -> PreviewStatus:
    """Each of the account's live Workers' state in the runtime, and the
    account's Durable Object storage on the disk of the runtime holding it.
    ``state_dir`` is that runtime's folder, for a page that read it with its
    other reads (placement.state_dir_read); without it this makes one query.
    The runtime answers from memory, the disk from the file system."""
    if state_dir is None:
        state_dir = placement.state_dir_of(account_id=account.pk)
    answer = ask_runtime("GET", "/status", timeout=1.0, state_dir=state_dir)
    workers = {
        worker["script"]: (
            worker["state"],
            LABELS.get(worker["state"], worker["state"]),
            worker.get("error") or worker.get("exit_reason") or "",
        )
        for worker in (answer or {}).get("workers", {}).values()
        if worker.get("account") == account.pk
    }
    return PreviewStatus(
        workers=workers,
        durable_objects=_object_storage(state_dir / "accounts" / account.pk),
        runtime_off=answer is None,
    )
