"""The preview edge's front for real: requests framed on one connection, hosts
switched on a reused connection, upgrades tunnelled, ambiguous requests
refused, and the banner added inside each unclaimed Worker's own process."""

import base64
import http.client
import os
import socket
import struct
import time

import pytest

from accounts.models import CloudAccount
from accounts.previews.front import CHUNKED, BadRequest, parse_head
from tests import preview_runtime
from tests.preview_runtime import host_of, make_worker

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("previews")]

RUNTIME_ENV = {"CLAIMPORTAL_PREVIEW_REQUEST_TIMEOUT_SECONDS": "3"}

runtime = preview_runtime.runtime
preview_settings = preview_runtime.preview_settings
_media_root = preview_runtime._media_root

ECHO = """
export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (request.headers.get("upgrade") === "websocket") {
      const [client, server] = Object.values(new WebSocketPair());
      server.accept();
      server.addEventListener("message", (event) => server.send("echo " + event.data));
      return new Response(null, { status: 101, webSocket: client });
    }
    if (url.pathname === "/spin") { while (true) {} }
    if (url.pathname === "/page") {
      return new Response("<html><body><p>echo</p></body></html>",
        { headers: { "content-type": "text/html" } });
    }
    const body = await request.text();
    return new Response(`${request.method} ${url.host}${url.pathname} ${body}`);
  },
};
"""


@pytest.fixture
def account(provision, preview_settings) -> CloudAccount:
    return provision().account


def live(runtime, account, name: str, source: str = ECHO):
    script = make_worker(account, name, source)
    assert runtime.apply(script)["state"] == "running", runtime.log()
    return script


def exchange(port: int, data: bytes) -> bytes:
    """Send raw bytes, read until the edge closes (or 5 s pass)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(data)
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
        return answer


# --- request heads, without a runtime -------------------------------------------


def test_a_head_gives_the_host_without_its_port_and_the_body_framing():
    request = parse_head(
        b"POST /x HTTP/1.1\r\nHost: A.Example:8787\r\nContent-Length: 12\r\n"
        b"Accept: text/html\r\n\r\n"
    )
    assert (request.method, request.host, request.length) == (b"POST", "a.example", 12)
    assert request.wants_html and not request.upgrade
    chunked = parse_head(
        b"PUT / HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: Chunked\r\n\r\n"
    )
    assert chunked.length == CHUNKED
    assert parse_head(b"GET / HTTP/1.1\r\nHost: b\r\n\r\n").length == 0


@pytest.mark.parametrize(
    "head",
    [
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -3\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: y\nContent-Length: 5\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n folded: line\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET http://b/ HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    ],
)
def test_heads_a_worker_could_frame_differently_are_refused(head):
    with pytest.raises(BadRequest):
        parse_head(head)


# --- the front with real Workers ------------------------------------------------


def test_a_reused_connection_reaches_each_hosts_own_worker(runtime, account):
    one, two = live(runtime, account, "one"), live(runtime, account, "two")
    connection = http.client.HTTPConnection("127.0.0.1", runtime.port, timeout=10)
    seen = set()
    for script in (one, two, one, two):
        connection.request("GET", "/x", headers={"Host": host_of(script)})
        answer = connection.getresponse()
        assert answer.read().decode() == f"GET {host_of(script)}/x "
        seen.add(connection.sock)
    assert len(seen) == 1  # one connection, as a reverse proxy's pool keeps it
    connection.request(
        "GET", "/", headers={"Host": "no.preview-none.preview.localhost"}
    )
    answer = connection.getresponse()
    assert answer.status == 404
    assert answer.getheader("x-claimportal-preview") == "unknown"
    connection.close()


def test_bodies_are_passed_on_whole_and_the_next_request_is_framed(runtime, account):
    one, two = live(runtime, account, "one"), live(runtime, account, "two")
    connection = http.client.HTTPConnection("127.0.0.1", runtime.port, timeout=10)
    connection.request(
        "POST",
        "/up",
        body=iter([b"GET / HTTP/1.1\r\n", b"Host: x\r\n\r\n", b"tail"]),
        headers={"Host": host_of(one)},
        encode_chunked=True,
    )
    answer = connection.getresponse().read().decode()
    assert answer == f"POST {host_of(one)}/up GET / HTTP/1.1\r\nHost: x\r\n\r\ntail"
    connection.request(
        "PUT", "/two", body=b"x" * 200_000, headers={"Host": host_of(two)}
    )
    answer = connection.getresponse().read().decode()
    assert answer == f"PUT {host_of(two)}/two " + "x" * 200_000
    connection.close()


def test_an_ambiguous_request_never_reaches_a_worker(runtime, account):
    script = live(runtime, account, "one")
    answer = exchange(
        runtime.port,
        f"POST / HTTP/1.1\r\nHost: {host_of(script)}\r\nContent-Length: 4\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n".encode(),
    )
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"X-Claimportal-Preview: bad" in answer
    assert b"POST" not in answer.split(b"\r\n\r\n", 1)[1]  # the Worker's echo


def test_a_websocket_stays_open_past_the_request_time_limit(runtime, account):
    script = live(runtime, account, "ws")
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", runtime.port), timeout=10) as raw:
        raw.sendall(
            f"GET /ws HTTP/1.1\r\nHost: {host_of(script)}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += raw.recv(4096)
        assert head.startswith(b"HTTP/1.1 101 ")
        time.sleep(3.5)  # longer than the runtime's request limit (3 s in tests)
        mask = os.urandom(4)
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(b"hi"))
        raw.sendall(struct.pack("!BB", 0x81, 0x80 | 2) + mask + payload)
        frame = raw.recv(4096)
        assert frame[0] == 0x81 and frame[2:] == b"echo hi"


def test_a_stuck_request_on_a_kept_alive_connection_gets_504(runtime, account):
    script = live(runtime, account, "spin")
    connection = http.client.HTTPConnection("127.0.0.1", runtime.port, timeout=20)
    connection.request("GET", "/", headers={"Host": host_of(script)})
    assert connection.getresponse().read().startswith(b"GET ")
    connection.request("GET", "/spin", headers={"Host": host_of(script)})
    answer = connection.getresponse()
    assert answer.status == 504
    assert answer.getheader("x-claimportal-preview") == "stuck"
    connection.close()
    runtime.wait_for(
        lambda: runtime.get(host_of(script)).status == 200, what="the restart"
    )


CLASS_WORKER = """
import { WorkerEntrypoint } from "cloudflare:workers";
export default class extends WorkerEntrypoint {
  fetch() {
    return new Response(`<html><body><p>${this.env.WHO}</p></body></html>`,
      { headers: { "content-type": "text/html" } });
  }
}
"""

STATEFUL_WORKER = """
export default {
  visits: 0,
  fetch() {
    this.visits += 1;
    return new Response(`<html><body><p>${this.visits}</p></body></html>`,
      { headers: { "content-type": "text/html" } });
  },
};
"""


def test_the_banner_wraps_every_kind_of_default_export(runtime, account):
    entrypoint = make_worker(
        account,
        "entry",
        CLASS_WORKER,
        bindings=[{"name": "WHO", "type": "plain_text", "text": "class"}],
    )
    assert runtime.apply(entrypoint)["state"] == "running", runtime.log()
    page = runtime.get(host_of(entrypoint)).text
    assert page.startswith('<html><body><p>class</p><div role="note"')
    assert "Unclaimed preview" in page

    stateful = live(runtime, account, "stateful", STATEFUL_WORKER)
    runtime.get(host_of(stateful))
    page = runtime.get(host_of(stateful)).text
    assert page.startswith("<html><body><p>2</p>")  # `this` is the Worker's own
    assert page.count("Unclaimed preview") == 1
