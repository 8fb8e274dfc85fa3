"""The binding gateway: where every Worker's binding calls (KV, D1, queues)
enter, and where they are shared out fairly between accounts.

Workers reach it on ``control.sock``; it forwards to Django's binding endpoints
(their own gunicorn, on a socket only the runtime can open). It never lets
more calls through than Django has threads, so nothing waits in gunicorn's own
queue, and it lets each account through only so many at once: a flood of KV
reads or a few slow D1 queries from one account hold that account's share and
no more, while others' calls are taken in turn. A call that waits past the
limit gets a clear 429 in the Worker.

Traces (what the runtime's tail Worker reports of every invocation) are not
forwarded one by one: the gateway takes them at once and ``TraceBuffer``
stores each version's together in the background (see there).

Nothing here needs Django's setup: the supervisor passes in how a
credential names its account.
"""

import http.client
import json
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from .unix import ThreadingUnixServer, UnixHTTPConnection

logger = logging.getLogger("claimportal.previews")

TOO_MANY = "Too many binding calls at once from this account"
# Headers that belong to one connection, not to the call (RFC 9110, 7.6.1).
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
}


class FairLimiter:
    """At most ``per_key`` holders per key and ``total`` in all. When full, a
    freed place goes to the waiting key that holds fewest (keys level in turn),
    each key's waiters in arrival order: a key with a thousand waiters delays
    another key's first waiter by one call, not a thousand."""

    def __init__(self, *, total: int, per_key: int) -> None:
        self.total = total
        self.per_key = per_key
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}
        self._busy = 0
        # key -> its waiters; the order of keys is whose turn comes next.
        self._waiting: OrderedDict[str, deque[threading.Event]] = OrderedDict()

    def acquire(self, key: str, *, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a place; False if none came."""
        with self._lock:
            if not self._waiting.get(key) and self._free(key):
                self._take(key)
                return True
            granted = threading.Event()
            self._waiting.setdefault(key, deque()).append(granted)
        if granted.wait(timeout):
            return True
        with self._lock:
            if granted.is_set():  # granted just as the wait ran out
                return True
            waiters = self._waiting[key]
            waiters.remove(granted)
            if not waiters:
                del self._waiting[key]
            return False

    def release(self, key: str) -> None:
        with self._lock:
            self._held[key] -= 1
            if not self._held[key]:
                del self._held[key]
            self._busy -= 1
            self._grant()

    def held(self, key: str) -> int:
        with self._lock:
            return self._held.get(key, 0)

    def _free(self, key: str) -> bool:
        return self._busy < self.total and self._held.get(key, 0) < self.per_key

    def _take(self, key: str) -> None:
        self._held[key] = self._held.get(key, 0) + 1
        self._busy += 1

    def _grant(self) -> None:
        """Hand free places to waiting keys: the key holding fewest first,
        keys holding as many in turn."""
        while self._busy < self.total:
            ready = [key for key in self._waiting if self._free(key)]
            if not ready:
                return
            key = min(ready, key=lambda k: self._held.get(k, 0))
            waiters = self._waiting.pop(key)
            self._take(key)
            waiters.popleft().set()
            if waiters:  # to the back of the line
                self._waiting[key] = waiters


# Where the tail Worker posts its traces (a JSON list), with the version's
# credential; the binding endpoints store them under the same path.
EVENTS_PATH = "/internal/preview/events"


class TraceBuffer:
    """Traces waiting to be stored, the newest ``per_version`` of each version.

    Every invocation of a Worker makes a trace. Forwarding each as it came
    gave a busy Worker a connection, a thread and a transaction per request:
    four visitors in a loop held 1,500 of the runtime's threads, and its
    sockets outgrew what ``select`` can watch. The gateway answers a trace at
    once instead, and one thread sends each version's pending traces in a
    single call, at most once every ``interval`` seconds, taking its account's
    turn in the limiter like any binding call. A Worker tracing faster than
    they can be stored loses its oldest traces, never anyone's binding calls.
    """

    def __init__(
        self,
        *,
        send: Callable[[str, list[Any]], None],
        limiter: FairLimiter,
        per_version: int = 50,
        interval: float = 0.05,
    ) -> None:
        self.send, self.limiter = send, limiter
        self.per_version, self.interval = per_version, interval
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[str, deque[Any]]] = {}  # token -> key, traces
        self._arrived = threading.Event()
        self._stopped = threading.Event()

    def add(self, token: str, key: str, traces: list[Any]) -> None:
        """Traces of ``token``'s version, newer than those pending."""
        with self._lock:
            _, pending = self._pending.setdefault(
                token, (key, deque(maxlen=self.per_version))
            )
            pending.extend(traces)
        self._arrived.set()

    def _put_back(self, token: str, key: str, traces: deque[Any]) -> None:
        """A round's traces whose account had no turn: they go before any
        that came since (the newest ``per_version`` stay)."""
        with self._lock:
            _, newer = self._pending.get(token, (key, ()))
            traces.extend(newer)
            self._pending[token] = (key, traces)
        self._arrived.set()

    def run(self) -> None:
        while not self._stopped.is_set():
            if self._arrived.wait(1.0):
                self.flush()
                # What arrives meanwhile goes together in the next round: a
                # lone trace is stored at once, a flood 20 times a second.
                time.sleep(self.interval)

    def stop(self) -> None:
        self._stopped.set()

    def flush(self) -> None:
        with self._lock:
            self._arrived.clear()
            pending, self._pending = self._pending, {}
        for token, (key, traces) in pending.items():
            if not self.limiter.acquire(key, timeout=self.interval):
                self._put_back(token, key, traces)  # its account is busy: next time
                continue
            try:
                self.send(token, list(traces))
            except (OSError, http.client.HTTPException):
                logger.warning("binding gateway: traces could not be stored")
            finally:
                self.limiter.release(key)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # workerd keeps its connections open
    server: "Gateway"

    def _handle(self) -> None:
        body = self._body()
        if body is None:
            self._reply(HTTPStatus.BAD_REQUEST, "The binding sent an unreadable body.")
            return
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        bearer = scheme.lower() == "bearer"
        key = self.server.account_of(token.strip()) if bearer else None
        if key is None:
            self._reply(HTTPStatus.FORBIDDEN, "This binding call is not allowed.")
            return
        if self.path == EVENTS_PATH and self.command == "POST":
            self._take_traces(token.strip(), key, body)
            return
        limiter = self.server.limiter
        if not limiter.acquire(key, timeout=self.server.wait_seconds):
            self._reply(
                HTTPStatus.TOO_MANY_REQUESTS,
                # The reason phrase too: KV's binding shows only the status line.
                reason=TOO_MANY,
                message=f"{TOO_MANY}: at most "
                f"{limiter.per_key} run together, and this one waited "
                f"{self.server.wait_seconds:g} s for its turn. Make fewer calls "
                "at once (or wait for the ones under way).",
            )
            return
        try:
            self._forward(body)
        finally:
            limiter.release(key)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle

    def _body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                line = self.rfile.readline(1024).split(b";", 1)[0].strip()
                try:
                    size = int(line, 16)
                except ValueError:
                    return None
                if not size:
                    while self.rfile.readline(1024).strip():  # trailers
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(8)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _take_traces(self, token: str, key: str, body: bytes) -> None:
        try:
            traces = json.loads(body)
        except ValueError:
            traces = None
        if not isinstance(traces, list):
            self._reply(HTTPStatus.BAD_REQUEST, "Traces come as a JSON list.")
            return
        self.server.traces.add(token, key, traces)
        self._reply(HTTPStatus.ACCEPTED, "Taken.")

    def _forward(self, body: bytes) -> None:
        headers = {
            name: value
            for name, value in self.headers.items()
            if name.lower() not in HOP_BY_HOP
        }
        try:
            status, reply_headers, answer = self.server.call(
                self.command, self.path, body, headers
            )
        except (OSError, http.client.HTTPException):
            logger.warning("binding gateway: the binding endpoints did not answer")
            self._reply(
                HTTPStatus.SERVICE_UNAVAILABLE, "The binding service is unavailable."
            )
            return
        self.send_response(status)
        for name, value in reply_headers:
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer)

    def _reply(self, status: int, message: str, reason: str | None = None) -> None:
        if "/d1/" in self.path:  # D1's binding reads only its JSON envelope
            body = json.dumps({"success": False, "error": message}).encode()
            content_type = "application/json"
        else:
            body, content_type = message.encode(), "text/plain; charset=utf-8"
        self.send_response(status, reason)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a flood of calls must not become a flood of log lines


class Gateway(ThreadingUnixServer):
    request_queue_size = 1024
    limiter: FairLimiter
    traces: TraceBuffer
    account_of: Callable[[str], str | None]
    upstream: Path
    upstream_timeout: float
    wait_seconds: float

    def call(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """One call to the binding endpoints: status, headers and body."""
        upstream = UnixHTTPConnection(self.upstream, timeout=self.upstream_timeout)
        try:
            upstream.request(method, path, body=body, headers=headers)
            response = upstream.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            upstream.close()

    def store_traces(self, token: str, traces: list[Any]) -> None:
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
        }
        status, _, _ = self.call(
            "POST", EVENTS_PATH, json.dumps(traces).encode(), headers
        )
        if status != HTTPStatus.OK:
            logger.warning("binding gateway: traces refused with status %s", status)

    def shutdown(self) -> None:
        self.traces.stop()
        super().shutdown()


def serve(
    listener_path: Path,
    *,
    upstream: Path,
    account_of: Callable[[str], str | None],
    limiter: FairLimiter,
    wait_seconds: float,
    upstream_timeout: float,
) -> Gateway:
    """Answer binding calls on ``listener_path`` in a background thread,
    forwarding each to ``upstream`` once ``limiter`` lets its account through
    (traces: together, from a thread of their own).
    ``account_of`` maps a credential to its account id (None: refused)."""
    listener_path.unlink(missing_ok=True)
    gateway = Gateway(str(listener_path), _Handler)
    listener_path.chmod(0o666)
    gateway.limiter = limiter
    gateway.account_of = account_of
    gateway.upstream = upstream
    gateway.upstream_timeout = upstream_timeout
    gateway.wait_seconds = wait_seconds
    gateway.traces = TraceBuffer(send=gateway.store_traces, limiter=limiter)
    threading.Thread(
        target=gateway.serve_forever, daemon=True, name="binding-gateway"
    ).start()
    threading.Thread(
        target=gateway.traces.run, daemon=True, name="binding-gateway-traces"
    ).start()
    return gateway
