"""HTTP over unix sockets: how the runtime, Django and the edge's helpers
talk (the runtime's sockets are never on the network)."""

import http.client
import socket
import socketserver
import sys
from pathlib import Path


class ThreadingUnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """A server on a unix socket, a thread per connection. A peer that went
    away mid-answer (a Worker stopped or swapped, a visitor gone) is no error
    worth a traceback in the run log."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to a unix socket."""

    def __init__(self, path: str | Path, *, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def unix_request(
    path: str | Path,
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> tuple[int, bytes]:
    """One request on a unix socket; raises OSError when nobody listens."""
    connection = UnixHTTPConnection(path, timeout=timeout)
    try:
        connection.request(method, url, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()
