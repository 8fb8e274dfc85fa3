"""Multipart bodies shaped like the ones wrangler (undici) sends for uploads."""

import base64
import json
import secrets
from typing import Any

from accounts.services.assets import asset_hash
from accounts.services.multipart import Part
from accounts.services.workers import WorkerUpload

MODULE = "application/javascript+module"
HELLO = b'export default { fetch() { return new Response("hello"); } };\n'


def form(parts: list[tuple[str, str | None, str | None, bytes]]) -> tuple[bytes, str]:
    """(body, content type) for parts of (name, filename, content type, bytes)."""
    boundary = "----formdata-undici-0" + secrets.token_hex(6)
    chunks = []
    for name, filename, content_type, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        if content_type:
            head += f"Content-Type: {content_type}\r\n"
        chunks.append(head.encode() + b"\r\n" + data + b"\r\n")
    body = b"".join(chunks) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def script_form(
    metadata: dict[str, Any], modules: dict[str, tuple[str, bytes]] | None = None
) -> tuple[bytes, str]:
    """A script upload: the metadata part, then one part per module."""
    if modules is None:
        modules = {"index.js": (MODULE, HELLO)}
    return form(
        [("metadata", None, None, json.dumps(metadata).encode())]
        + [(name, name, kind, data) for name, (kind, data) in modules.items()]
    )


def module_upload(code: bytes = HELLO, **fields: Any) -> WorkerUpload:
    """A one-module upload as the service takes it (the API reads the rest)."""
    return WorkerUpload(
        modules=[Part("index.js", "index.js", MODULE, code)],
        main_module="index.js",
        compatibility_date="2026-11-01",
        **fields,
    )


def upload(api, path: str, body_and_type: tuple[bytes, str], method: str = "put"):
    body, content_type = body_and_type
    return getattr(api.client, method)(
        api.url(path), data=body, content_type=content_type, **api.auth
    )


def asset_manifest(files: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    return {
        path: {"hash": asset_hash(data, path=path), "size": len(data)}
        for path, data in files.items()
    }


def asset_form(files: dict[str, bytes], hashes: list[str]) -> tuple[bytes, str]:
    """A bucket upload: part name and filename are the hash, body is base64."""
    by_hash = {asset_hash(data, path=p): data for p, data in files.items()}
    return form(
        [
            (h, h, "text/html; charset=utf-8", base64.b64encode(by_hash[h]))
            for h in hashes
        ]
    )
