"""The WebSocket server ``wrangler tail`` connects to: ``/tail/<id>/<key>``
with the ``trace-v1`` protocol, one JSON text message per event.

One loop polls for new events of the Workers being tailed (a single query for
all of them) and hands each to the tails whose filters it passes; every tail
checks now and then that it still runs (not deleted or expired, its account
not purged) and ends with a normal close when it does not.
"""

import asyncio
import contextlib
import json
import logging
import random
import signal
from collections import defaultdict
from http import HTTPStatus

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from django.utils import timezone
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request
from websockets.protocol import State
from websockets.typing import Subprotocol

from accounts.services import tails

logger = logging.getLogger("claimportal.tail")

PROTOCOL = Subprotocol("trace-v1")
POLL_SECONDS = 0.1
CHECK_SECONDS = 2.0
QUEUE_LIMIT = 1000  # events waiting for a slow client; beyond it they are dropped


def _db(function):
    """Run ORM calls off the event loop, with fresh connections as needed."""

    def call(**kwargs):
        close_old_connections()
        return function(**kwargs)

    return sync_to_async(call, thread_sensitive=False)


class Hub:
    """Who listens to which Worker, and the poll that feeds them."""

    def __init__(self) -> None:
        self.listeners: dict[int, set[asyncio.Queue]] = defaultdict(set)
        self.after_id = 0

    async def join(self, script_id: int) -> asyncio.Queue:
        if not any(self.listeners.values()):
            self.after_id = await _db(tails.latest_event_id)()
        queue: asyncio.Queue = asyncio.Queue(QUEUE_LIMIT)
        self.listeners[script_id].add(queue)
        return queue

    def leave(self, script_id: int, queue: asyncio.Queue) -> None:
        self.listeners[script_id].discard(queue)
        if not self.listeners[script_id]:
            del self.listeners[script_id]

    async def run(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            if not self.listeners:
                continue
            try:
                events = await _db(tails.events_after)(
                    script_ids=list(self.listeners), after_id=self.after_id
                )
            except Exception:  # the database is back at the next poll
                logger.exception("tail server: reading events failed")
                continue
            for event in events:
                self.after_id = max(self.after_id, event.id)
                for queue in self.listeners.get(event.script_id, ()):
                    if not queue.full():
                        queue.put_nowait(event.data)


class MaskedFrames:
    """wrangler sends its one message (``{"debug": false}``) unmasked, which
    RFC 6455 lets a server refuse and websockets does; Cloudflare's tail takes
    it. This gives every unmasked client frame a zero mask (same payload)."""

    def __init__(self) -> None:
        self.pending = b""
        self.payload_left = 0

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        self.pending += data
        while self.pending:
            if self.payload_left:
                n = min(self.payload_left, len(self.pending))
                out += self.pending[:n]
                self.pending = self.pending[n:]
                self.payload_left -= n
                continue
            if len(self.pending) < 2:
                break
            length = self.pending[1] & 0x7F
            extended = {126: 2, 127: 8}.get(length, 0)
            masked = bool(self.pending[1] & 0x80)
            size = 2 + extended + (4 if masked else 0)
            if len(self.pending) < size:
                break
            if extended:
                length = int.from_bytes(self.pending[2 : 2 + extended], "big")
            head = bytearray(self.pending[:size])
            if not masked:
                head[1] |= 0x80
                head += b"\0\0\0\0"
            out += head
            self.pending = self.pending[size:]
            self.payload_left = length
        return bytes(out)


class WranglerConnection(ServerConnection):
    def data_received(self, data: bytes) -> None:
        if self.protocol.state is State.OPEN:
            if not hasattr(self, "frames"):
                self.frames = MaskedFrames()
            data = self.frames.feed(data)
        super().data_received(data)


class TailServer:
    def __init__(self) -> None:
        self.hub = Hub()

    def _ids(self, path: str) -> tuple[str, str] | None:
        parts = path.split("?", 1)[0].strip("/").split("/")
        if len(parts) == 3 and parts[0] == "tail":
            return parts[1], parts[2]
        return None

    async def check(self, connection: ServerConnection, request: Request):
        """Refuse, before the upgrade, what is not an open tail."""
        ids = self._ids(request.path)
        tail = None
        if ids is not None:
            tail = await _db(tails.open_tail)(
                tail_id=ids[0], key=ids[1], now=timezone.now()
            )
        if tail is None:
            return connection.respond(HTTPStatus.NOT_FOUND, "No such tail.\n")
        connection.tail = tail  # type: ignore[attr-defined]
        return None

    async def handle(self, connection: ServerConnection) -> None:
        tail = connection.tail  # type: ignore[attr-defined]
        rng = random.Random()
        queue = await self.hub.join(tail.script_id)
        watcher = asyncio.create_task(self._watch(connection, tail.pk))
        try:
            while True:
                data = await queue.get()
                if tails.passes_filters(filters=tail.filters, data=data, rng=rng):
                    await connection.send(json.dumps(data))
        except ConnectionClosed:
            pass
        finally:
            watcher.cancel()
            self.hub.leave(tail.script_id, queue)

    async def _watch(self, connection: ServerConnection, tail_id) -> None:
        """Close the tail once it is deleted, expired, or its account gone."""
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            try:
                still = await _db(tails.tail_is_open)(
                    tail_id=tail_id, now=timezone.now()
                )
            except Exception:
                logger.exception("tail server: checking a tail failed")
                continue
            if not still:
                await connection.close(1000, "The tail has ended.")
                return

    async def serve(self, host: str, port: int) -> None:
        stop = asyncio.get_running_loop().create_future()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.cancel)
        poll = asyncio.create_task(self.hub.run())
        async with serve(
            self.handle,
            host,
            port,
            subprotocols=[PROTOCOL],
            process_request=self.check,
            create_connection=WranglerConnection,
            server_header=None,
            max_size=64 * 1024,  # wrangler sends only {"debug": ...}
        ) as server:
            bound = server.sockets[0].getsockname()[1]
            logger.info("tail server listening on %s:%s", host, bound)
            print(f"tail server on ws://{host}:{bound}/tail/", flush=True)
            with contextlib.suppress(asyncio.CancelledError):
                await stop
        poll.cancel()
