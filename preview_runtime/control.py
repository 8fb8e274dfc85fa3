"""The supervisor's own small HTTP API, on a unix socket.

Requests come from Django (a deploy committed, a state changed). Each becomes
a command that the supervisor's single main thread runs, so
the process table is never touched by two threads.
"""

import json
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .unix import ThreadingUnixServer

logger = logging.getLogger("claimportal.previews")


@dataclass
class Command:
    action: str  # the first path segment: apply, ensure, stuck, status ...
    arg: str  # the second one, if any (a script key)
    query: dict[str, str]
    body: bytes = b""
    reply: Future = field(default_factory=Future)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def _handle(self) -> None:
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if not parts or len(parts) > 2:
            self._send(404, {"error": "unknown command"})
            return
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        command = Command(parts[0], parts[1] if len(parts) > 1 else "", query, body)
        direct = self.server.direct.get(command.action)
        try:
            if direct is not None:  # needs no process table: runs in this thread
                answer = direct(command)
            else:
                self.server.commands.put(command)
                answer = command.reply.result(timeout=self.server.timeout_seconds)
        except FutureTimeout:
            self._send(504, {"state": "unavailable", "error": "the runtime is busy"})
            return
        except Exception as error:  # the command failed; say so, keep serving
            logger.exception("preview runtime command %s failed", command.action)
            self._send(500, {"state": "unavailable", "error": str(error)})
            return
        self._send(200, answer)

    do_GET = do_POST = _handle

    def _send(self, status: int, answer: Any) -> None:
        body = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the supervisor logs what the commands do


class _Server(ThreadingUnixServer):
    commands: "queue.Queue[Command]"
    direct: dict[str, Callable[[Command], Any]]
    timeout_seconds: float


def serve(
    path: Path,
    commands: "queue.Queue[Command]",
    *,
    direct: dict[str, Callable[[Command], Any]],
    timeout: float,
) -> _Server:
    """Start answering on ``path`` in a background thread. Commands go to
    ``commands`` and each request waits for its reply up to ``timeout``; the
    ``direct`` ones run at once in the request's own thread."""
    path.unlink(missing_ok=True)
    server = _Server(str(path), _Handler)
    path.chmod(0o660)  # Django (same user or group) only: never a Worker's UID
    server.commands = commands
    server.direct = direct
    server.timeout_seconds = timeout
    threading.Thread(target=server.serve_forever, daemon=True, name="control").start()
    return server
