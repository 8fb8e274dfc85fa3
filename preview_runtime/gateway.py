"""The binding gateway: where every Worker's binding calls (KV, D1, queues)
enter, and where they are shared out fairly between accounts.

Each Worker reaches it on a socket of its own (its ``control.sock``, a
``Doors`` door); it forwards to Django's binding endpoints (their own gunicorn,
on a socket only the runtime can open). It never lets more calls through than
Django has threads, so nothing waits in gunicorn's own queue, and it lets each
account through only so many at once: a flood of KV reads or a few slow D1
queries from one account hold that account's share and no more, while others'
calls are taken in turn. A call that waits past the limit gets a clear 429 in
the Worker. A door takes a few calls at once; the rest of a flood waits in
that Worker's own socket queue, so thousands of calls at once cost the
runtime no more threads than a few, and delay no other Worker's.

Traces (what the runtime's tail Worker reports of every invocation) are not
forwarded one by one: the gateway takes them at once and ``TraceBuffer``
stores each version's together in the background (see there).

Nothing here needs Django's setup: the supervisor passes in how a
credential names its account.
"""

import http.client
import json
import logging
import selectors
import socket
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, cast

from .unix import UnixHTTPConnection

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
    protocol_version = "HTTP/1.1"
    timeout = 30  # a connection silent this long (mid-call or idle) is closed

    @property
    def place(self) -> "_Place":
        return cast("_Place", self.server)  # what Gateway.answer passed in

    @property
    def gateway(self) -> "Gateway":
        return self.place.gateway

    def end_headers(self) -> None:
        # Kept open for the Worker's next call while its door has room; at a
        # full door, closed, so the place goes to a call waiting in its queue
        # instead of to this connection's next one, which may never come.
        if not self.place.door_has_room():
            self.send_header("Connection", "close")
        super().end_headers()

    def _handle(self) -> None:
        body = self._body()
        if body is None:
            self._reply(HTTPStatus.BAD_REQUEST, "The binding sent an unreadable body.")
            return
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        bearer = scheme.lower() == "bearer"
        key = self.gateway.account_of(token.strip()) if bearer else None
        if key is None:
            self._reply(HTTPStatus.FORBIDDEN, "This binding call is not allowed.")
            return
        if self.path == EVENTS_PATH and self.command == "POST":
            self._take_traces(token.strip(), key, body)
            return
        limiter = self.gateway.limiter
        if not limiter.acquire(key, timeout=self.gateway.wait_seconds):
            self._reply(
                HTTPStatus.TOO_MANY_REQUESTS,
                # The reason phrase too: KV's binding shows only the status line.
                reason=TOO_MANY,
                message=f"{TOO_MANY}: at most "
                f"{limiter.per_key} run together, and this one waited "
                f"{self.gateway.wait_seconds:g} s for its turn. Make fewer calls "
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
        self.gateway.traces.add(token, key, traces)
        self._reply(HTTPStatus.ACCEPTED, "Taken.")

    def _forward(self, body: bytes) -> None:
        headers = {
            name: value
            for name, value in self.headers.items()
            if name.lower() not in HOP_BY_HOP
        }
        try:
            status, reply_headers, answer = self.gateway.call(
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


class Gateway:
    """What every door shares: the limiter, the traces, and the way to the
    binding endpoints."""

    def __init__(
        self,
        *,
        upstream: Path,
        account_of: Callable[[str], str | None],
        limiter: FairLimiter,
        wait_seconds: float,
        upstream_timeout: float,
    ) -> None:
        self.upstream, self.upstream_timeout = upstream, upstream_timeout
        self.account_of, self.limiter = account_of, limiter
        self.wait_seconds = wait_seconds
        self.traces = TraceBuffer(send=self.store_traces, limiter=limiter)

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

    def answer(
        self, connection: socket.socket, door_has_room: Callable[[], bool]
    ) -> None:
        """The calls on ``connection``, answered, until it closes."""
        try:
            _Handler(connection, "", _Place(self, door_has_room))  # type: ignore[arg-type]
        except (ConnectionError, TimeoutError):
            pass  # the Worker went away or fell silent: nobody to answer
        except Exception:
            logger.exception("binding gateway: a call failed")


@dataclass(frozen=True)
class _Place:
    """One connection's place at its door."""

    gateway: Gateway
    door_has_room: Callable[[], bool]


class _Door:
    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        self.connections = 0  # taken and not yet closed (under Doors._lock)
        self.watched = False  # by the selector (the accepting thread's)


class Doors:
    """Each Worker's own socket into the gateway, bound into its cell as its
    only way to the binding endpoints. One thread accepts on all of them. A
    door holds at most ``per_door`` connections (a call each at a time) and
    stops accepting until one closes: more wait in that socket's own queue,
    where no other Worker's calls are. (One shared socket let a flood of 3,000
    calls fill the queue every Worker connected through: another account's
    reads failed or waited seconds.)"""

    def __init__(self, gateway: Gateway, *, per_door: int) -> None:
        self.gateway, self.per_door = gateway, per_door
        self._selector = selectors.DefaultSelector()
        self._wake, self._woken = socket.socketpair()
        self._woken.setblocking(False)
        self._selector.register(self._woken, selectors.EVENT_READ)
        self._lock = threading.Lock()
        self._changes: list[Callable[[], None]] = []
        self._doors: dict[socket.socket, _Door] = {}  # touched by run() alone
        self._stopped = False

    def add(self, listener: socket.socket) -> None:
        """Take calls on ``listener`` (a listening unix socket)."""
        listener.setblocking(False)
        self._later(lambda: self._open(listener))

    def remove(self, listener: socket.socket) -> None:
        """Stop taking calls on ``listener`` and close it; calls under way
        are answered."""
        self._later(lambda: self._close(listener))

    def stop(self) -> None:
        self._later(self._stop)

    def run(self) -> None:
        while not self._stopped:
            for key, _ in self._selector.select():
                try:
                    if key.fileobj is self._woken:
                        self._apply_changes()
                    else:
                        self._accept(key.data)
                except Exception:  # one door's trouble; the others go on
                    logger.exception("binding gateway: a door failed")
        self._selector.close()
        for door in self._doors.values():
            door.listener.close()

    def _later(self, change: Callable[[], None]) -> None:
        """Selector changes are the accepting thread's: queued, then woken."""
        with self._lock:
            self._changes.append(change)
        self._wake.send(b"\0")

    def _apply_changes(self) -> None:
        while True:
            try:
                if not self._woken.recv(4096):
                    break
            except BlockingIOError:
                break
        with self._lock:
            changes, self._changes = self._changes, []
        for change in changes:
            change()

    def _accept(self, door: _Door) -> None:
        try:
            connection, _ = door.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # out of descriptors: the call waits in its queue
            logger.warning("binding gateway: cannot take a call now")
            time.sleep(0.05)
            return
        connection.setblocking(True)
        with self._lock:
            door.connections += 1
            full = door.connections >= self.per_door
        if full:  # a connection closed since then watches it again (_rewatch)
            self._unwatch(door)
        threading.Thread(
            target=self._answer, args=(door, connection), daemon=True
        ).start()

    def _answer(self, door: _Door, connection: socket.socket) -> None:
        try:
            self.gateway.answer(connection, lambda: door.connections < self.per_door)
        finally:
            connection.close()
            with self._lock:
                reopen = door.connections == self.per_door  # it was full
                door.connections -= 1
            if reopen:  # the accepting thread watches it again
                self._later(lambda: self._rewatch(door))

    def _rewatch(self, door: _Door) -> None:
        if self._doors.get(door.listener) is door and not door.watched:
            self._watch(door)

    def _open(self, listener: socket.socket) -> None:
        door = self._doors[listener] = _Door(listener)
        self._watch(door)

    def _close(self, listener: socket.socket) -> None:
        door = self._doors.pop(listener, None)
        if door is not None:
            self._unwatch(door)
        listener.close()

    def _watch(self, door: _Door) -> None:
        self._selector.register(door.listener, selectors.EVENT_READ, door)
        door.watched = True

    def _unwatch(self, door: _Door) -> None:
        if door.watched:
            self._selector.unregister(door.listener)
            door.watched = False

    def _stop(self) -> None:
        self._stopped = True
        self.gateway.traces.stop()


def serve(
    *,
    upstream: Path,
    account_of: Callable[[str], str | None],
    limiter: FairLimiter,
    wait_seconds: float,
    upstream_timeout: float,
    per_door: int,
) -> Doors:
    """Answer binding calls on the doors added to the result, in background
    threads, forwarding each to ``upstream`` once ``limiter`` lets its account
    through (traces: together, from a thread of their own). ``account_of``
    maps a credential to its account id (None: refused)."""
    gateway = Gateway(
        upstream=upstream,
        account_of=account_of,
        limiter=limiter,
        wait_seconds=wait_seconds,
        upstream_timeout=upstream_timeout,
    )
    doors = Doors(gateway, per_door=per_door)
    threading.Thread(target=doors.run, daemon=True, name="binding-gateway").start()
    threading.Thread(
        target=gateway.traces.run, daemon=True, name="binding-gateway-traces"
    ).start()
    return doors
