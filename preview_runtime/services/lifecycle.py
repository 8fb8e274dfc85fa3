"""Where the rest of claimportal meets previews: a deploy checks that the
upload really starts (as Cloudflare validates it) and has the runtime serve it
once committed; a purge removes everything the runtime kept."""

import re
import shutil
from dataclasses import dataclass

from django.db import transaction

from accounts.models import WorkerVersion
from preview_runtime.render import WorkerSpec

from . import placement
from .client import apply_script, reconcile_now
from .specs import (
    WorkerStartupFailed,
    check_version_starts,
    start_key,
    worker_spec,
)


@dataclass(frozen=True)
class StartChecked:
    """An upload that started, checked before its transaction took any lock."""

    key: str
    startup_ms: int | None
    failure: WorkerStartupFailed | None = None


def check_before_storing(*, spec: WorkerSpec, account_id: str) -> StartChecked:
    """Start an upload from its parsed parts, before anything is locked (the
    start takes up to the startup timeout). A failure is kept, not raised: the
    upload's other checks speak first."""
    try:
        startup_ms = check_version_starts(spec=spec, account_id=account_id)
        return StartChecked(start_key(spec), startup_ms)
    except WorkerStartupFailed as failure:
        return StartChecked(start_key(spec), None, failure)


def check_upload(
    *, version: WorkerVersion, checked: StartChecked | None = None
) -> None:
    """Record ``version``'s startup time, inside the upload's transaction: from
    ``checked`` when it started that very Worker, else by starting it here.
    Raises WorkerStartupFailed (10021, with workerd's message), which rolls the
    whole upload back."""
    if checked is not None and checked.key == start_key(worker_spec(version=version)):
        if checked.failure is not None:
            raise checked.failure
        startup_ms = checked.startup_ms
    else:  # something changed between the check and the lock: check again
        startup_ms = check_version_starts(version=version)
    if startup_ms is not None:
        version.startup_time_ms = startup_ms
        version.save(update_fields=["startup_time_ms"])


def serve_on_commit(*, script_id: int) -> None:
    """Once the deploy commits, have the runtime start the script's current
    version before the API answers; if the runtime is down, it catches up."""
    transaction.on_commit(lambda: apply_script(script_id=script_id))


def remove_preview_data(*, account_ids: list[str]) -> None:
    """A purge cleaner (CLAIMPORTAL_PURGE_CLEANERS): stop the accounts' Workers
    and delete every file the runtime kept for them, Durable Object data
    included. The runtime does both when asked; if it is down, the files go
    now and no process is left to stop."""
    state_dirs = placement.state_dirs()  # every runtime's: wherever it was held
    reconcile_now(state_dirs=state_dirs)
    for account_id in account_ids:
        if re.fullmatch(r"[0-9a-f]{32}", account_id):
            for state_dir in state_dirs:
                shutil.rmtree(state_dir / "accounts" / account_id, ignore_errors=True)
