"""Where the rest of claimportal meets previews: a deploy checks that the
upload really starts (as Cloudflare validates it) and has the runtime serve it
once committed; a purge removes everything the runtime kept."""

import re
import shutil

from django.db import transaction

from accounts.models import WorkerVersion

from .client import apply_script, reconcile_now, state_dir
from .specs import check_version_starts


def check_upload(*, version: WorkerVersion) -> None:
    """Start ``version`` once, inside the upload's transaction, and record its
    startup time. Raises WorkerStartupFailed (10021, with workerd's message),
    which rolls the whole upload back."""
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
    reconcile_now()
    for account_id in account_ids:
        if re.fullmatch(r"[0-9a-f]{32}", account_id):
            shutil.rmtree(state_dir() / "accounts" / account_id, ignore_errors=True)
