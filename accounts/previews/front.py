"""The preview edge: the public port, in front of every Worker's workerd.

It reads each request's head to learn its Host, then passes the request's bytes
to that Worker's own workerd on its unix socket and the answer's bytes back,
untouched: no second HTTP server sits between a visitor and a Worker. When it
cannot (unknown host, suspended or expired account, a Worker that is starting,
over a limit, crashed, failed or too slow) it answers with a page of its own.

Every client connection has a thread and, at a time, one connection to one
Worker. Requests are framed here (head, then Content-Length or chunked body),
so a connection that a reverse proxy reuses for another host moves to that
host's Worker once the previous one has answered: half-closing the old
connection makes workerd finish the answer in flight, then close. Answers are
not parsed: workerd frames every HTTP/1.1 response itself.

The supervisor owns all state: the front reads its published route table and
asks it (through its command queue) when a Worker does not answer.
"""

import contextlib
import html
import logging
import re
import select
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

logger = logging.getLogger("claimportal.previews")

HEAD_LIMIT = 64 * 1024  # a longer request head gets 431
HEAD_SECONDS = 30.0  # a client must send a request head within this
BUFFER_LIMIT = 256 * 1024  # stop reading a side while this much waits to be sent
RECV = 65536
READABLE = select.POLLIN | select.POLLHUP | select.POLLERR

PAGES = {
    "bad": (400, "This request could not be understood."),
    "too_large": (431, "The request's headers are too large."),
    "unknown": (404, "No Worker is deployed at this address."),
    "suspended": (410, "This preview was suspended."),
    "expired": (410, "This preview expired and was deleted."),
    "deleted": (410, "This preview was deleted by the holder of its claim link."),
    "starting": (503, "This Worker is starting. Try again in a moment."),
    "limited": (503, "This preview is not running right now."),
    "crashed": (502, "This Worker crashed. It is being restarted."),
    "failed": (502, "This Worker failed to start."),
    "stuck": (504, "This Worker took too long to answer. It is being restarted."),
    "unavailable": (503, "The preview runtime is busy. Try again in a moment."),
}

TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
CHUNKED = -1  # Request.length of a chunked body


@dataclass(frozen=True)
class Route:
    key: str  # the supervisor's name for the Worker
    socket: str  # its http socket


@dataclass(frozen=True)
class Table:
    """What the front routes by; the supervisor replaces it whole."""

    routes: Mapping[str, Route]  # "<script>.<subdomain>" -> route
    gone: Mapping[str, tuple[str, str]]  # subdomain -> (state, detail)


class BadRequest(Exception):
    def __init__(self, kind: str = "bad") -> None:
        self.kind = kind


@dataclass(frozen=True)
class Request:
    method: bytes
    host: str  # lower case, without a port
    head: bytes  # as received, passed on as it is
    length: int  # body bytes, or CHUNKED
    upgrade: bool
    wants_html: bool


def parse_head(head: bytes) -> Request:
    """One request head (ending in an empty line). Strict where a lenient
    reading could frame the body differently from workerd: bare CR or LF,
    folded lines, Content-Length with Transfer-Encoding, codings other than
    chunked, conflicting lengths are all refused."""
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].split(b" ")
    if (
        len(parts) != 3
        or not TOKEN.fullmatch(parts[0])
        or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0")
        or not (parts[1].startswith(b"/") or parts[1] == b"*")
    ):
        raise BadRequest()
    fields: dict[bytes, list[bytes]] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not TOKEN.fullmatch(name) or b"\r" in value or b"\n" in value:
            raise BadRequest()
        fields.setdefault(name.lower(), []).append(value.strip(b" \t"))
    hosts = fields.get(b"host", [])
    if len(hosts) > 1 or b"\0" in head:
        raise BadRequest()
    host = hosts[0].decode("latin-1").lower() if hosts else ""
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit():
        host = name
    codings, lengths = fields.get(b"transfer-encoding"), fields.get(b"content-length")
    if codings:
        if lengths or len(codings) != 1 or codings[0].lower() != b"chunked":
            raise BadRequest()
        length = CHUNKED
    elif lengths:
        if len(set(lengths)) != 1 or not re.fullmatch(rb"[0-9]{1,18}", lengths[0]):
            raise BadRequest()
        length = int(lengths[0])
    else:
        length = 0
    return Request(
        method=parts[0],
        host=host,
        head=head,
        length=length,
        upgrade=b"upgrade" in fields,
        wants_html=any(b"text/html" in v for v in fields.get(b"accept", [])),
    )


def page(kind: str, *, detail: str = "", html_page: bool, head_only: bool) -> bytes:
    """A whole HTTP response saying why the Worker does not answer; the
    connection closes after it."""
    status, text = PAGES[kind]
    if html_page:
        body = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{status} · claimportal preview</title></head>"
            '<body style="font:16px/1.5 system-ui,sans-serif;max-width:36rem;'
            'margin:4rem auto;padding:0 1rem">'
            f'<h1 style="font-size:1.4rem">{html.escape(text)}</h1>'
            + (f"<p>{html.escape(detail)}</p>" if detail else "")
            + f'<p style="color:#666">claimportal preview · HTTP {status}</p>'
            "</body></html>"
        ).encode()
        content_type = "text/html; charset=utf-8"
    else:
        body = (f"{text} {detail}" if detail else text).encode() + b"\n"
        content_type = "text/plain; charset=utf-8"
    headers = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Cache-Control: no-store",
        f"X-Claimportal-Preview: {kind}",
        "Connection: close",
    ]
    if status == 503:
        headers.append("Retry-After: 1")
    return "\r\n".join(headers).encode() + b"\r\n\r\n" + (b"" if head_only else body)


class Front:
    """Accepts on the public port; one thread per client connection."""

    def __init__(
        self,
        listener: socket.socket,
        *,
        domain: str,
        timeout: float,
        table: Callable[[], Table],
        ask: Callable[[str, str], dict[str, Any]],
        tell: Callable[[str, str], None],
    ) -> None:
        self.listener = listener
        self.suffix = "." + domain.lower()
        self.timeout = timeout  # a Worker must start answering within this
        self.table = table
        self.ask = ask  # a supervisor command, waiting for its answer
        self.tell = tell  # a supervisor command, not waiting

    def start(self) -> None:
        threading.Thread(target=self._accept, daemon=True, name="front").start()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _address = self.listener.accept()
            except OSError:
                return  # stopped
            threading.Thread(
                target=_Connection(self, client).serve, daemon=True
            ).start()

    def find(self, host: str) -> tuple[Route | None, str, str]:
        """The route for ``host``, or the page kind and detail to answer."""
        if not host.endswith(self.suffix):
            return None, "unknown", ""
        name = host[: -len(self.suffix)]
        table = self.table()
        route = table.routes.get(name)
        if route is not None:
            return route, "", ""
        state, detail = table.gone.get(name.partition(".")[2], ("unknown", ""))
        return None, state, detail


class _Done(Exception):
    """The connection is finished (closed, or answered with a page)."""


# What the client side is doing: reading a head, a body, waiting for an
# upgrade's answer, tunnelling (an upgrade was accepted) or waiting for the
# previous Worker to finish before a request goes elsewhere.
HEAD, BODY, CHUNK_SIZE, CHUNK_DATA, CHUNK_END, TRAILER = range(6)
UPGRADING, TUNNEL, SWITCHING = range(6, 9)


class _Connection:
    def __init__(self, front: Front, client: socket.socket) -> None:
        self.front = front
        self.client = client
        self.worker: socket.socket | None = None
        self.route: Route | None = None
        self.inbox = b""  # from the client, not handled yet
        self.to_client = bytearray()
        self.to_worker = bytearray()
        self.phase = HEAD
        self.left = 0  # body bytes still to pass on
        self.request: Request | None = None  # the latest one: pages follow its Accept
        self.held: Request | None = None  # waits while SWITCHING
        self.waiting_since: float | None = None  # a request with no answer yet
        self.replay: bytes | None = None  # that request, if it may be sent again
        self.replayed = False
        self.client_done = False  # the client closed its side
        self.worker_shut = False  # we closed our side towards the Worker
        self.poller = select.poll()

    # --- the loop ---------------------------------------------------------------

    def serve(self) -> None:
        client = self.client
        try:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.setblocking(False)
            self.poller.register(client, select.POLLIN)
            self._loop()
        except _Done:
            pass
        except OSError:
            pass  # the client went away
        except Exception:  # one connection's bug must not reach the others
            logger.exception("preview front: connection failed")
        finally:
            if self.worker is not None:
                self.worker.close()
            client.close()

    def _loop(self) -> None:
        client_fd = self.client.fileno()
        head_deadline = time.monotonic() + HEAD_SECONDS
        while True:
            self._flush()
            self._watch()
            if self.waiting_since is not None and self.phase != TUNNEL:
                deadline = self.waiting_since + self.front.timeout
            elif self.worker is None and self.phase == HEAD:
                deadline = head_deadline  # a client that never sends its head
            else:
                deadline = None
            wait = None if deadline is None else max(0, deadline - time.monotonic())
            events = self.poller.poll(None if wait is None else wait * 1000)
            if not events:
                if self.waiting_since is not None:
                    self._stuck()
                raise _Done
            for fd, event in events:
                if not event & READABLE:
                    continue  # writable: the top of the loop sends
                if fd == client_fd:
                    if self.client_done:
                        raise _Done  # hung up both ways
                    self._from_client()
                    head_deadline = time.monotonic() + HEAD_SECONDS
                elif self.worker is not None and fd == self.worker.fileno():
                    self._from_worker()

    def _watch(self) -> None:
        """Read a side only while the other can take it; write what waits."""
        reading = (
            not self.client_done
            and self.phase not in (UPGRADING, SWITCHING)
            and len(self.to_worker) < BUFFER_LIMIT
        )
        self.poller.modify(
            self.client,
            (select.POLLIN if reading else 0)
            | (select.POLLOUT if self.to_client else 0),
        )
        if self.worker is not None:
            self.poller.modify(
                self.worker,
                (select.POLLIN if len(self.to_client) < BUFFER_LIMIT else 0)
                | (select.POLLOUT if self.to_worker else 0),
            )

    def _flush(self) -> None:
        if self.to_client:
            try:
                sent = self.client.send(self.to_client)
            except BlockingIOError:
                sent = 0
            del self.to_client[:sent]
        if self.to_worker and self.worker is not None:
            try:
                sent = self.worker.send(self.to_worker)
            except BlockingIOError:
                sent = 0
            except OSError:
                self._worker_gone()
                return
            del self.to_worker[:sent]
        if (
            self.worker is not None
            and not self.to_worker
            and not self.worker_shut
            and (self.phase == SWITCHING or self.client_done)
        ):
            self.worker.shutdown(socket.SHUT_WR)  # workerd answers, then closes
            self.worker_shut = True

    # --- the client's side ------------------------------------------------------

    def _from_client(self) -> None:
        try:
            data = self.client.recv(RECV)
        except BlockingIOError:
            return
        if not data:
            self.client_done = True
            if self.worker is None:
                raise _Done
            return
        self.inbox += data
        self._advance()

    def _advance(self) -> None:
        """Handle what the client sent, as far as the phase allows."""
        while self.inbox and self.phase not in (UPGRADING, SWITCHING):
            if self.phase == TUNNEL:
                self._pass(len(self.inbox))
            elif self.phase == HEAD:
                end = self.inbox.find(b"\r\n\r\n")
                if end < 0:
                    if len(self.inbox) > HEAD_LIMIT:
                        self._page("too_large")
                    return
                if end + 4 > HEAD_LIMIT:
                    self._page("too_large")
                head, self.inbox = self.inbox[: end + 4], self.inbox[end + 4 :]
                try:
                    request = parse_head(head)
                except BadRequest as bad:
                    self._page(bad.kind)
                self._begin(request)
            elif self.phase == BODY:
                self._pass(min(self.left, len(self.inbox)))
                if self.left == 0:
                    self._body_done()
            else:
                self._chunked()

    def _pass(self, count: int) -> None:
        self.to_worker += self.inbox[:count]
        self.inbox = self.inbox[count:]
        if self.phase == BODY:
            self.left -= count

    def _chunked(self) -> None:
        """One step through a chunked body, passed on as it is."""
        if self.phase == CHUNK_DATA:
            count = min(self.left, len(self.inbox))
            self.to_worker += self.inbox[:count]
            self.inbox = self.inbox[count:]
            self.left -= count
            if self.left == 0:
                self.phase = CHUNK_END
            return
        if self.phase == CHUNK_END:
            if len(self.inbox) < 2:
                return
            if self.inbox[:2] != b"\r\n":
                self._page("bad")
            self._pass(2)
            self.phase = CHUNK_SIZE
            return
        end = self.inbox.find(b"\r\n")
        if end < 0:
            if len(self.inbox) > 4096:
                self._page("bad")
            return
        line = self.inbox[:end]
        if b"\n" in line or b"\r" in line:
            self._page("bad")
        self._pass(end + 2)
        if self.phase == TRAILER:
            if not line:
                self._body_done()
            return
        size = line.split(b";", 1)[0]
        if not HEX.fullmatch(size):
            self._page("bad")
        self.left = int(size, 16)
        self.phase = CHUNK_DATA if self.left else TRAILER

    def _body_done(self) -> None:
        request = self.request
        self.phase = UPGRADING if request and request.upgrade else HEAD

    def _begin(self, request: Request) -> None:
        """A new request: pass it to its Worker, or answer it here."""
        self.request = request
        route, kind, detail = self.front.find(request.host)
        if self.worker is not None and (route is None or route != self.route):
            # The Worker connected so far must finish answering first.
            self.held, self.phase = request, SWITCHING
            return
        if route is None:
            self._page(kind, detail)
        if self.worker is None:
            self._connect(route)
        if self.waiting_since is None:
            self.waiting_since = time.monotonic()
            no_body = request.length == 0 and not request.upgrade
            self.replay = request.head if no_body else None
        else:
            self.replay = None  # pipelined: what went before is not ours to send
        self.replayed = False
        self.to_worker += request.head
        if request.length == CHUNKED:
            self.phase = CHUNK_SIZE
        elif request.length:
            self.phase, self.left = BODY, request.length
        else:
            self._body_done()

    # --- the Worker's side ------------------------------------------------------

    def _connect(self, route: Route) -> None:
        """Connect to the Worker's socket; if nobody is there, ask the
        supervisor why (it starts a stopped Worker) and try once more."""
        for attempt in (1, 2):
            worker = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                worker.settimeout(self.front.timeout)
                worker.connect(route.socket)
            except OSError:
                worker.close()
                answer = self.front.ask("ensure", route.key)
                if answer.get("state") != "running" or attempt == 2:
                    self._page_for(answer)
                continue
            worker.setblocking(False)
            self.worker, self.route, self.worker_shut = worker, route, False
            self.poller.register(worker, select.POLLIN)
            return

    def _from_worker(self) -> None:
        assert self.worker is not None
        try:
            data = self.worker.recv(RECV)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._worker_gone()
            return
        if self.phase == UPGRADING:
            self.phase = TUNNEL if data.startswith(b"HTTP/1.1 101") else HEAD
        self.to_client += data
        self.waiting_since = self.replay = None

    def _worker_gone(self) -> None:
        """The Worker's side closed: it finished (we half-closed), or it
        dropped a request it had not answered, or it closed after answering."""
        assert self.worker is not None and self.route is not None
        route = self.route
        self.poller.unregister(self.worker)
        self.worker.close()
        self.worker = None
        if self.phase == SWITCHING and self.waiting_since is None:
            held, self.held, self.phase = self.held, None, HEAD
            assert held is not None
            self._begin(held)
            self._advance()
            return
        if self.waiting_since is None:
            # It answered, then closed: the client must see the close too
            # (an answer may end with it).
            self._send_all(bytes(self.to_client))
            raise _Done
        # Crashed, replaced, or stopped with the request unanswered.
        answer = self.front.ask("ensure", route.key)
        if answer.get("state") == "running" and self.replay and not self.replayed:
            replay, self.replayed = self.replay, True
            self._connect(route)
            self.to_worker[:] = replay
            self.waiting_since = time.monotonic()
            return
        self._page_for(answer)

    def _stuck(self) -> None:
        """No answer within the limit: the Worker is spinning (workerd has no
        CPU limit), so the supervisor restarts it."""
        if self.route is not None:
            self.front.tell("stuck", self.route.key)
        self._page("stuck")

    # --- pages ----------------------------------------------------------------

    def _page_for(self, answer: dict[str, Any]) -> None:
        state = answer.get("state", "")
        kind = state if state in PAGES and state != "running" else "crashed"
        self._page(kind, answer.get("message", ""))

    def _page(self, kind: str, detail: str = "") -> None:
        if self.worker is not None and self.waiting_since is None:
            raise _Done  # a Worker's answer may be on its way: no page after it
        request = self.request
        self._send_all(
            bytes(self.to_client)
            + page(
                kind,
                detail=detail,
                html_page=bool(request and request.wants_html),
                head_only=bool(request and request.method == b"HEAD"),
            )
        )
        raise _Done

    def _send_all(self, data: bytes) -> None:
        self.to_client.clear()
        self.client.settimeout(5)
        self.client.sendall(data)
