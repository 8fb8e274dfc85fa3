"""The edge (HAProxy) for real, in front of the portal's gunicorn pools and the
previews' workerd: requests to each host's own Worker on one connection,
upgrades tunnelled, smuggling attempts refused, HTTP/2, thousands of slow
clients held without the portal or a preview slowing down, and the banner
added inside each unclaimed Worker's own process."""

import base64
import contextlib
import http.client
import os
import resource
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from django.test import RequestFactory

from accounts.http import client_address, edge_client_address
from accounts.models import CloudAccount
from tests import preview_runtime
from tests.conftest import ROOT, stop_process, subprocess_env
from tests.edge import pools, portal_env
from tests.preview_runtime import free_port, host_of, make_worker
from tests.test_faults import answers

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("previews")]

POOLS = Path(tempfile.gettempdir()) / f"cp-edge-{uuid.uuid4().hex[:8]}"
PORTAL = "localhost"
TAIL_PORT = free_port()
RUNTIME_ENV = {
    "CLAIMPORTAL_PREVIEW_REQUEST_TIMEOUT_SECONDS": "3",
    "CLAIMPORTAL_EDGE_TAIL": f"127.0.0.1:{TAIL_PORT}",
    **portal_env(POOLS),
}

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
    const body = await request.text();
    return new Response(`${request.method} ${url.host}${url.pathname} ${body}`);
  },
};
"""


@pytest.fixture(scope="module")
def portal(runtime):
    """The portal's pools behind the runtime's edge (which knows them already)."""
    POOLS.mkdir(exist_ok=True)
    with pools(POOLS, CLAIMPORTAL_CACHE_PREFIX=f"edge-{uuid.uuid4().hex[:8]}"):
        origin = f"http://127.0.0.1:{runtime.port}"
        deadline = time.monotonic() + 60
        while not answers(origin + "/healthz"):
            assert time.monotonic() < deadline, "the portal did not start"
            time.sleep(0.2)
        yield origin


@pytest.fixture
def account(provision, preview_settings) -> CloudAccount:
    return provision().account


def live(runtime, account, name: str, source: str = ECHO):
    script = make_worker(account, name, source)
    assert runtime.apply(script)["state"] == "running", runtime.log()
    return script


def exchange(port: int, data: bytes) -> bytes:
    """Send raw bytes, read until the edge closes (or 10 s pass)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(data)
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
        return answer


def portal_get(port: int, path: str, *, timeout: float = 30) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Host": PORTAL})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


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


SMUGGLING = {
    "two lengths": "Content-Length: 4\r\nContent-Length: 40\r\n",
    "chunked twice": "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
    "chunked, then something": "Transfer-Encoding: chunked, identity\r\n",
}


@pytest.mark.parametrize("framing", SMUGGLING.values(), ids=SMUGGLING)
def test_a_smuggling_attempt_is_refused_for_workers_and_the_portal(
    runtime, account, portal, framing
):
    script = live(runtime, account, "one")
    hidden = f"GET /hidden HTTP/1.1\r\nHost: {host_of(script)}\r\n\r\n"
    for host in (host_of(script), PORTAL):
        answer = exchange(
            runtime.port,
            f"POST /client/v4/x HTTP/1.1\r\nHost: {host}\r\n{framing}\r\n"
            f"0\r\n\r\n{hidden}".encode(),
        )
        assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
        assert answer.count(b"HTTP/1.1 ") == 1  # the hidden request got nothing
        assert b"/hidden" not in answer


def test_a_length_beside_chunked_is_dropped_and_the_connection_closed(
    runtime, account, portal
):
    """RFC 9112: chunked wins; the edge sends the Worker one framing only and
    closes after the answer, so nothing after the body is ever a request."""
    script = live(runtime, account, "one")
    answer = exchange(
        runtime.port,
        f"POST /x HTTP/1.1\r\nHost: {host_of(script)}\r\nContent-Length: 30\r\n"
        "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        f"GET /hidden HTTP/1.1\r\nHost: {host_of(script)}\r\n\r\n".encode(),
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"connection: close" in head.lower()
    assert body == f"POST {host_of(script)}/x abc".encode()  # and nothing more


def test_http2_is_spoken_in_clear_text(runtime, portal):
    settings_frame = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    with socket.create_connection(("127.0.0.1", runtime.port), timeout=10) as raw:
        raw.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + settings_frame)
        frame = raw.recv(9)
    assert frame[3] == 0x4  # the server's SETTINGS frame: h2 prior knowledge


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


def test_slow_and_idle_clients_leave_the_portal_and_previews_answering(
    runtime, account, portal
):
    """2,000 connections to each host, half of them silent, half sending a
    request head a byte at a time: the edge holds them all itself."""
    script = live(runtime, account, "held")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 10000)), hard))
    held = []
    try:
        for host in (PORTAL, host_of(script)):
            for number in range(2000):
                client = socket.socket()
                client.setblocking(False)
                client.connect_ex(("127.0.0.1", runtime.port))
                held.append((client, host, number % 2))
        time.sleep(1)  # all connected (loopback), none complete
        for client, host, slow in held:
            if slow:
                with contextlib.suppress(OSError):
                    client.send(f"GET / HTTP/1.1\r\nHost: {host}\r\nX-".encode())
        began = time.monotonic()
        assert portal_get(runtime.port, "/healthz") == 200
        assert runtime.get(host_of(script), "/ok").text.startswith("GET ")
        assert time.monotonic() - began < 10
    finally:
        for client, _host, _slow in held:
            client.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_half_sent_requests_do_not_stop_the_web_app(runtime, portal):
    """Bodies that never finish wait at the edge, not in gunicorn's threads
    (2 workers of 4 and 8 threads here: 40 would take them all)."""
    half = []
    try:
        for number in range(40):
            path = "/client/v4/accounts" if number % 2 else "/report/x/"
            client = socket.create_connection(("127.0.0.1", runtime.port), timeout=10)
            client.sendall(
                f"POST {path} HTTP/1.1\r\nHost: {PORTAL}\r\n"
                "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                '{"half": "'.encode()
            )
            half.append(client)
        time.sleep(0.5)
        assert portal_get(runtime.port, "/healthz", timeout=10) == 200
        assert portal_get(runtime.port, "/client/v4/accounts", timeout=10) == 401
    finally:
        for client in half:
            client.close()


def test_the_portal_reads_the_client_address_the_edge_saw_and_no_other():
    seen = edge_client_address(client_address)
    forwarded = RequestFactory().get(
        "/", REMOTE_ADDR="", HTTP_X_FORWARDED_FOR="2001:db8::7"
    )
    assert seen(forwarded) == "2001:db8::7"  # over the edge's socket
    direct = RequestFactory().get(
        "/", REMOTE_ADDR="198.51.100.4", HTTP_X_FORWARDED_FOR="2001:db8::7"
    )
    assert seen(direct) == "198.51.100.4"  # a client's own claim


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


def test_a_worker_reads_the_address_the_edge_saw_not_one_the_client_sent(
    runtime, account
):
    script = live(
        runtime,
        account,
        "ip",
        """export default { fetch(request) {
          return new Response(request.headers.get("cf-connecting-ip")); } };""",
    )
    connection = http.client.HTTPConnection("127.0.0.1", runtime.port, timeout=10)
    connection.request(
        "GET", "/", headers={"Host": host_of(script), "CF-Connecting-IP": "192.0.2.7"}
    )
    assert connection.getresponse().read().decode() == "127.0.0.1"
    connection.close()


def test_tail_websockets_reach_the_tail_server_on_the_portals_origin(runtime, tmp_path):
    log = tmp_path / "tail.log"
    server = subprocess.Popen(
        [sys.executable, "manage.py", "tail_server", "--port", str(TAIL_PORT)],
        cwd=ROOT,
        env=subprocess_env(),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while "tail server on " not in log.read_text(errors="replace"):
            started = server.poll() is None and time.monotonic() < deadline
            assert started, log.read_text()
            time.sleep(0.05)
        connection = http.client.HTTPConnection("127.0.0.1", runtime.port, timeout=10)
        connection.request(
            "GET",
            f"/tail/{uuid.uuid4()}/nokey",
            headers={
                "Host": PORTAL,
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Protocol": "trace-v1",
            },
        )
        answer = connection.getresponse()
        status, body = answer.status, answer.read()
        connection.close()
    finally:
        stop_process(server)
    assert (status, body) == (404, b"No such tail.\n")  # the tail server's words
