"""multipart/form-data bodies, shaped as wrangler sends them."""

import secrets
from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None


def _quoted(value: str) -> str:
    # Names are module paths and hashes; quotes and line breaks never belong.
    if any(c in value for c in '"\r\n'):
        raise ValueError(f"A form field name cannot contain quotes: {value!r}")
    return f'"{value}"'


def encode(parts: list[Part]) -> tuple[bytes, str]:
    """The body and its Content-Type header."""
    boundary = "claimportal-" + secrets.token_hex(16)
    chunks: list[bytes] = []
    for part in parts:
        disposition = f"form-data; name={_quoted(part.name)}"
        if part.filename is not None:
            disposition += f"; filename={_quoted(part.filename)}"
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        if part.content_type:
            head += f"Content-Type: {part.content_type}\r\n"
        chunks += [head.encode(), b"\r\n", part.data, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"
