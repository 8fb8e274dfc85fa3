"""Talking to the running preview runtime over its unix socket.

Every call is best effort: when the runtime is down the caller goes on (a
deploy still succeeds) and the runtime's reconcile loop catches up later.
"""

import http.client
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from django.conf import settings

from preview_runtime.unix import unix_request


def state_dir() -> Path:
    return Path(settings.CLAIMPORTAL_PREVIEW_STATE_DIR)


def supervisor_socket() -> Path:
    return state_dir() / "supervisor.sock"


def ask_runtime(
    method: str, url: str, *, timeout: float = 5.0
) -> dict[str, Any] | None:
    """The runtime's JSON answer, or None when it is not running."""
    try:
        _status, body = unix_request(supervisor_socket(), method, url, timeout=timeout)
    except (OSError, http.client.HTTPException):
        return None
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def apply_script(*, script_id: int, timeout: float = 5.0) -> dict[str, Any] | None:
    """Ask the runtime to start the script's current version now (after a
    deploy committed). Returns its state, or None if the runtime is down."""
    return ask_runtime("POST", f"/apply/{int(script_id)}", timeout=timeout)


def reconcile_now() -> None:
    """Ask the runtime to re-read the database now (after a suspend, claim or
    purge) instead of at its next tick."""
    ask_runtime("POST", "/reconcile", timeout=2.0)


def runtime_status(*, timeout: float = 1.0) -> dict[str, Any] | None:
    """Every Worker's state in the runtime, keyed by script id, or None."""
    return ask_runtime("GET", "/status", timeout=timeout)


def invoke_worker(
    *,
    script_id: int,
    handler: str,
    payload: dict[str, Any] | None = None,
    query: dict[str, str] | None = None,
    timeout: float,
) -> dict[str, Any] | None:
    """Run the script's ``queue`` or ``scheduled`` handler in the runtime (it
    starts a stopped Worker first). The handler's result, or None when the
    runtime is down or did not answer within ``timeout``."""
    url = f"/invoke/{int(script_id)}?{urlencode({'handler': handler, **(query or {})})}"
    try:
        status, body = unix_request(
            supervisor_socket(),
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
