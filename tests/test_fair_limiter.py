"""The binding gateway's limiter (a share per account, granted in turn), its
trace buffer, and its doors (a socket per Worker, a few calls at a time)."""

import http.client
import http.server
import os
import resource
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from preview_runtime import gateway
from preview_runtime.gateway import FairLimiter, TraceBuffer
from preview_runtime.process import unix_listener
from preview_runtime.unix import ThreadingUnixServer, UnixHTTPConnection


def test_each_key_has_its_share_and_waiting_keys_take_turns():
    limiter = FairLimiter(total=2, per_key=2)
    assert limiter.acquire("noisy", timeout=0)
    assert limiter.acquire("noisy", timeout=0)
    assert not limiter.acquire("noisy", timeout=0)  # over its share
    order: list[str] = []

    def wait(key: str) -> None:
        if limiter.acquire(key, timeout=10):
            order.append(key)

    waiters = [threading.Thread(target=wait, args=("noisy",)) for _ in range(3)]
    for thread in waiters:
        thread.start()
    while sum(len(q) for q in limiter._waiting.values()) < 3:
        threading.Event().wait(0.01)
    quiet = threading.Thread(target=wait, args=("quiet",))
    quiet.start()
    while "quiet" not in limiter._waiting:
        threading.Event().wait(0.01)
    limiter.release("noisy")  # the quiet key's turn comes before noisy's others
    quiet.join(5)
    assert order == ["quiet"]
    assert limiter.held("quiet") == 1 and limiter.held("noisy") == 1
    limiter.release("quiet")
    limiter.release("noisy")
    for thread in waiters[:2]:
        thread.join(0.01)
    while len(order) < 3:
        threading.Event().wait(0.01)
    assert order == ["quiet", "noisy", "noisy"]  # two places: two of noisy's


def test_a_wait_that_runs_out_leaves_no_trace():
    limiter = FairLimiter(total=1, per_key=1)
    assert limiter.acquire("a", timeout=0)
    assert not limiter.acquire("b", timeout=0.05)
    limiter.release("a")
    assert limiter.acquire("b", timeout=0)  # nothing left waiting in b's name
    assert limiter.held("a") == 0


def _buffer(
    interval: float,
) -> tuple[FairLimiter, list[tuple[str, list[int]]], TraceBuffer]:
    """A trace buffer keeping three per version, and what it sent."""
    limiter = FairLimiter(total=4, per_key=1)
    sent: list[tuple[str, list[int]]] = []
    buffer = TraceBuffer(
        send=lambda token, traces: sent.append((token, traces)),
        limiter=limiter,
        per_version=3,
        interval=interval,
    )
    return limiter, sent, buffer


def test_traces_are_sent_together_newest_kept_and_wait_for_their_accounts_turn():
    limiter, sent, buffer = _buffer(interval=0.01)
    for n in range(5):
        buffer.add("v1", "account-a", [n])
    buffer.add("v2", "account-b", ["b"])
    assert limiter.acquire("account-a", timeout=0)  # account a is busy
    buffer.flush()
    assert sent == [("v2", ["b"])]
    limiter.release("account-a")
    buffer.flush()
    assert sent[1:] == [("v1", [2, 3, 4])]  # one call, the newest three
    buffer.flush()
    assert len(sent) == 2


def test_traces_held_back_for_a_busy_account_go_before_newer_ones():
    # interval: how long a round waits for the busy account's turn
    limiter, sent, buffer = _buffer(interval=1.0)
    buffer.add("v1", "account-a", [1, 2])
    assert limiter.acquire("account-a", timeout=0)  # account a is busy
    # Newer traces come while the round waits for a turn that never comes.
    later = threading.Timer(0.2, buffer.add, args=("v1", "account-a", [3, 4]))
    later.start()
    buffer.flush()
    later.join()
    limiter.release("account-a")
    buffer.flush()
    assert sent == [("v1", [2, 3, 4])]  # in order, the newest three


class _HeldUpstream(ThreadingUnixServer):
    """Binding endpoints that answer once the test lets them, counting the
    calls they hold."""

    def __init__(self, path: Path) -> None:
        self.release, self.lock = threading.Event(), threading.Lock()
        self.holding = self.most = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with outer.lock:
                    outer.holding += 1
                    outer.most = max(outer.most, outer.holding)
                outer.release.wait(10)
                with outer.lock:
                    outer.holding -= 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        super().__init__(str(path), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


def _ask(
    door: Path, account: str, *, timeout: float
) -> tuple[UnixHTTPConnection, int, bytes, str | None]:
    """A call through ``door``: its connection (left open), the answer's
    status and body, and whether the answer closed the connection."""
    connection = UnixHTTPConnection(door, timeout=timeout)
    connection.request("GET", "/kv", headers={"Authorization": f"Bearer {account}"})
    response = connection.getresponse()
    return (
        connection,
        response.status,
        response.read(),
        response.getheader("Connection"),
    )


def _call(door: Path, account: str) -> int:
    connection, status, _, _ = _ask(door, account, timeout=10)
    connection.close()
    return status


@contextmanager
def _doors(per_door: int) -> Iterator[tuple[Path, _HeldUpstream]]:
    root = Path(tempfile.mkdtemp(prefix="cp-doors-"))
    upstream = _HeldUpstream(root / "upstream.sock")
    doors = gateway.serve(
        upstream=root / "upstream.sock",
        account_of=lambda token: token,  # the token names its account
        limiter=FairLimiter(total=20, per_key=10),
        wait_seconds=10,
        upstream_timeout=10,
        per_door=per_door,
    )
    for name in ("noisy", "quiet"):
        doors.add(unix_listener(root / f"{name}.sock"))
    try:
        yield root, upstream
    finally:
        doors.stop()
        upstream.shutdown()


def _kept(door: Path, account: str) -> tuple[UnixHTTPConnection, str | None]:
    """A call on a connection the caller keeps open, as workerd keeps its
    own, and whether the answer closed it."""
    connection, status, body, closing = _ask(door, account, timeout=5)
    assert (status, body) == (200, b"ok")
    return connection, closing


def test_a_door_keeps_connections_while_it_has_room_and_closes_them_when_full():
    with _doors(per_door=2) as (root, upstream):
        upstream.release.set()
        kept, closing = _kept(root / "quiet.sock", "quiet")
        assert closing is None  # room for another: kept for the next call
        # Now it holds a place. Calls on connections kept open too: each
        # answer at a full door closes its connection, or the next would
        # wait for a place nobody gives up.
        later = [_kept(root / "quiet.sock", "quiet") for _ in range(3)]
        assert [closing for _, closing in later] == ["close"] * 3
        for connection in [kept, *(connection for connection, _ in later)]:
            connection.close()


def test_a_door_takes_a_few_calls_at_once_and_the_rest_wait_in_its_own_queue():
    with _doors(per_door=2) as (root, upstream):
        answers: list[int] = []
        flood = [
            threading.Thread(
                target=lambda: answers.append(_call(root / "noisy.sock", "noisy"))
            )
            for _ in range(6)
        ]
        for thread in flood:
            thread.start()
        while upstream.holding < 2:
            threading.Event().wait(0.01)
        threading.Event().wait(0.2)  # time for more, had the door taken them
        assert upstream.holding == 2  # its door's share: the rest wait in its queue
        # Another Worker's door is not behind them.
        quiet = threading.Thread(
            target=lambda: answers.append(_call(root / "quiet.sock", "quiet"))
        )
        quiet.start()
        while upstream.holding < 3:
            threading.Event().wait(0.01)
        upstream.release.set()
        for thread in [*flood, quiet]:
            thread.join(10)
        assert answers == [200] * 7
        assert upstream.most == 3


def test_a_gateway_out_of_descriptors_takes_the_call_once_it_has_them():
    """Accepting with no descriptor left raised out of the accepting thread,
    and every Worker's calls would have gone unanswered from then on."""
    with _doors(per_door=2) as (root, upstream):
        upstream.release.set()
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.settimeout(10)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        highest = max(int(fd) for fd in os.listdir("/proc/self/fd"))
        resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 1, hard))
        filling: list[int] = []
        try:
            while True:  # every free number below the limit taken
                filling.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
        try:
            client.connect(str(root / "quiet.sock"))
            client.sendall(b"GET /kv HTTP/1.1\r\nAuthorization: Bearer quiet\r\n\r\n")
            threading.Event().wait(0.3)  # the gateway tries, and cannot take it
        finally:
            for fd in filling:
                os.close(fd)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        response = http.client.HTTPResponse(client)
        response.begin()
        assert (response.status, response.read()) == (200, b"ok")
        client.close()
