"""Talking to the running preview runtimes over their unix sockets: each
call goes to the runtime holding the account (``placement``).

Every call is best effort: when the runtime is down the caller goes on (a
deploy still succeeds) and the runtime's reconcile loop catches up later.
"""

import http.client
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from django.conf import settings

from accounts.models import PreviewPlacement
from preview_runtime.unix import unix_request

from . import placement


def _socket(state_dir: Path) -> Path:
    return state_dir / "supervisor.sock"


def ask_runtime(
    method: str, url: str, *, timeout: float = 5.0, state_dir: Path | None = None
) -> dict[str, Any] | None:
    """The JSON answer of the runtime in ``state_dir`` (this install's own by
    default), or None when it is not running."""
    where = state_dir or Path(settings.CLAIMPORTAL_PREVIEW_STATE_DIR)
    try:
        _status, body = unix_request(_socket(where), method, url, timeout=timeout)
    except (OSError, http.client.HTTPException):
        return None
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _holder(script_id: int) -> Path | None:
    """The state folder of the runtime holding the script's account, or None
    when no runtime holds it yet."""
    held = (
        PreviewPlacement.objects.filter(account__workers__pk=script_id)
        .values_list("runtime__state_dir", flat=True)
        .first()
    )
    return Path(held) if held else None


def apply_script(*, script_id: int, timeout: float = 5.0) -> dict[str, Any] | None:
    """Ask the runtime to start the script's current version now (after a
    deploy committed). Returns its state, or None if the runtime is down. An
    account no runtime holds yet is offered to each: one takes it."""
    url = f"/apply/{int(script_id)}"
    holder = _holder(script_id)
    if holder is not None:
        return ask_runtime("POST", url, timeout=timeout, state_dir=holder)
    answer = None
    for state_dir in placement.state_dirs():
        answer = ask_runtime("POST", url, timeout=timeout, state_dir=state_dir)
        if answer is not None and answer.get("state") != "absent":
            return answer
    return answer


def reconcile_now(*, state_dirs: list[Path] | None = None) -> None:
    """Ask every runtime (those in ``state_dirs``, when the caller has them)
    to re-read the database now (after a suspend, claim or purge) instead of
    at its next tick."""
    for state_dir in placement.state_dirs() if state_dirs is None else state_dirs:
        ask_runtime("POST", "/reconcile", timeout=2.0, state_dir=state_dir)


def runtime_status(*, timeout: float = 1.0) -> dict[str, Any] | None:
    """Every Worker's state in every runtime, keyed by script id, or None
    when no runtime answers."""
    answers = []
    for state_dir in placement.state_dirs():
        answer = ask_runtime("GET", "/status", timeout=timeout, state_dir=state_dir)
        if answer is not None:
            answers.append(answer)
    if not answers:
        return None
    workers: dict[str, Any] = {}
    for answer in answers:
        workers |= answer.get("workers", {})
    return {**answers[0], "workers": workers}


def invoke_worker(
    *,
    script_id: int,
    handler: str,
    payload: dict[str, Any] | None = None,
    query: dict[str, str] | None = None,
    timeout: float,
) -> dict[str, Any] | None:
    """Run the script's ``queue`` or ``scheduled`` handler in the runtime that
    holds it (it starts a stopped Worker first). The handler's result, or None
    when that runtime is down or did not answer within ``timeout``."""
    url = f"/invoke/{int(script_id)}?{urlencode({'handler': handler, **(query or {})})}"
    holder = _holder(script_id) or Path(settings.CLAIMPORTAL_PREVIEW_STATE_DIR)
    try:
        status, body = unix_request(
            _socket(holder),
            "POST",
            url,
            body=json.dumps(payload).encode() if payload is not None else None,
            headers={"Content-Type": "application/json"},
            timeout=timeout,
        )
        answer = json.loads(body) if status == 200 else None
    except (OSError, http.client.HTTPException, ValueError):
        return None
    return answer if isinstance(answer, dict) else None
