"""The edge's own pages: why a preview host has no Worker answering.

The same pages are served two ways: by our small pages backend (the
supervisor's, behind HAProxy, for hosts no running Worker serves) and as
HAProxy's error files (a Worker that crashed or took too long mid-request).
"""

import html
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from .unix import ThreadingUnixServer

PAGES = {
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
    "bad": (400, "This request could not be understood."),
    "too_large": (431, "The request's headers are too large."),
    "slow": (408, "The request took too long to arrive."),
    "portal": (503, "claimportal is not answering right now. Try again in a moment."),
}


def body(kind: str, *, detail: str = "", html_page: bool) -> tuple[str, bytes]:
    """The content type and body of ``kind``'s page."""
    status, text = PAGES[kind]
    if not html_page:
        line = f"{text} {detail}" if detail else text
        return "text/plain; charset=utf-8", line.encode() + b"\n"
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{status} · claimportal preview</title></head>"
        '<body style="font:16px/1.5 system-ui,sans-serif;max-width:36rem;'
        'margin:4rem auto;padding:0 1rem">'
        f'<h1 style="font-size:1.4rem">{html.escape(text)}</h1>'
        + (f"<p>{html.escape(detail)}</p>" if detail else "")
        + f'<p style="color:#666">claimportal preview · HTTP {status}</p>'
        "</body></html>"
    )
    return "text/html; charset=utf-8", page.encode()


def headers(kind: str, *, content_type: str, length: int) -> list[tuple[str, str]]:
    status = PAGES[kind][0]
    fields = [
        ("Content-Type", content_type),
        ("Content-Length", str(length)),
        ("Cache-Control", "no-store"),
        ("X-Claimportal-Preview", kind),
    ]
    if status == 503:
        fields.append(("Retry-After", "1"))
    return fields


def error_file(kind: str) -> bytes:
    """``kind``'s page as a whole HTTP response, for HAProxy's ``errorfile``."""
    status = PAGES[kind][0]
    content_type, content = body(kind, html_page=True)
    head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}"]
    head += [
        f"{name}: {value}"
        for name, value in headers(kind, content_type=content_type, length=len(content))
    ]
    head.append("Connection: close")
    return "\r\n".join(head).encode() + b"\r\n\r\n" + content


class _Handler(BaseHTTPRequestHandler):
    """HAProxy framed the request strictly already; this only answers it."""

    protocol_version = "HTTP/1.1"
    server: "_Server"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)  # the connection stays usable
        if "Transfer-Encoding" in self.headers:
            self.close_connection = True  # the body is not read: start afresh
        host = self.headers.get("X-Forwarded-Host") or self.headers.get("Host") or ""
        host = host.lower().rsplit(":", 1)[0] if "]" not in host else host.lower()
        try:
            kind, detail = self.server.lookup(host)
        except Exception:  # a page must always come back
            kind, detail = "unavailable", ""
        content_type, content = body(
            kind, detail=detail, html_page="text/html" in self.headers.get("Accept", "")
        )
        self.send_response(PAGES[kind][0])
        fields = headers(kind, content_type=content_type, length=len(content))
        for name, value in fields:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(content)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _answer

    def log_message(self, format: str, *args) -> None:
        pass


class _Server(ThreadingUnixServer):
    lookup: Callable[[str], tuple[str, str]]


def serve(path: Path, lookup: Callable[[str], tuple[str, str]]) -> _Server:
    """Answer on ``path`` in background threads: ``lookup(host)`` gives the
    page's kind and detail."""
    path.unlink(missing_ok=True)
    server = _Server(str(path), _Handler)
    path.chmod(0o660)
    server.lookup = lookup
    threading.Thread(target=server.serve_forever, daemon=True, name="pages").start()
    return server
