"""A strict multipart/form-data reader for script and asset uploads.

The body is already bounded (Django refuses bodies over DATA_UPLOAD_MAX_MEMORY_SIZE
before they are read), so parsing works on bytes in memory: every part keeps its
exact bytes and its full Content-Type, which the stored Worker needs verbatim.
Anything malformed is an InvalidInput, never an exception of another kind.
"""

import re
from dataclasses import dataclass

from accounts.exceptions import InvalidInput

# RFC 2046: 1-70 characters from a small alphabet.
_BOUNDARY = re.compile(r"^[0-9A-Za-z'()+_,./:=? -]{0,69}[0-9A-Za-z'()+_,./:=?-]$")
_PARAM = re.compile(r';\s*([A-Za-z0-9_.*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
# Browsers and undici escape these three in names (WHATWG form-data encoding).
_NAME_ESCAPES = {"%0A": "\n", "%0D": "\r", "%22": '"'}
_NAME_ESCAPE = re.compile("|".join(_NAME_ESCAPES))
MAX_HEADER_BYTES = 8192


class MalformedMultipart(InvalidInput):
    message = "The request body is not valid multipart/form-data."


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None
    content_type: str  # the header as sent ("" when absent)
    data: bytes

    @property
    def media_type(self) -> str:
        """The Content-Type without parameters, lower-cased."""
        return self.content_type.split(";", 1)[0].strip().lower()


def header_params(value: str) -> tuple[str, dict[str, str]]:
    """``form-data; name="x"`` as ("form-data", {"name": "x"})."""
    head, _, rest = value.partition(";")
    params = {}
    for key, raw in _PARAM.findall(";" + rest):
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params[key.lower()] = raw
    return head.strip().lower(), params


def boundary_of(content_type: str) -> bytes:
    media, params = header_params(content_type)
    if media != "multipart/form-data":
        raise MalformedMultipart(
            "The request must be multipart/form-data "
            f"(the Content-Type was {content_type[:100]!r})."
        )
    boundary = params.get("boundary", "")
    if not _BOUNDARY.match(boundary):
        raise MalformedMultipart("The multipart boundary is missing or not valid.")
    return boundary.encode("ascii")


def _unescape_name(value: str) -> str:
    return _NAME_ESCAPE.sub(lambda m: _NAME_ESCAPES[m.group(0)], value)


def _read_headers(raw: bytes) -> dict[str, str]:
    if len(raw) > MAX_HEADER_BYTES:
        raise MalformedMultipart("A multipart part has oversized headers.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedMultipart("A multipart part header is not UTF-8.") from exc
    headers = {}
    for line in text.split("\r\n") if text else []:
        name, colon, value = line.partition(":")
        if not colon or not name.strip() or "\x00" in line:
            raise MalformedMultipart(f"A multipart part header is malformed: {line!r}")
        headers[name.strip().lower()] = value.strip()
    return headers


def _make_part(raw: bytes) -> Part:
    if raw.startswith(b"\r\n"):  # a part with no headers at all
        head, data = b"", raw[2:]
    else:
        head, sep, data = raw.partition(b"\r\n\r\n")
        if not sep:
            raise MalformedMultipart("A multipart part has no end of headers.")
    headers = _read_headers(head)
    disposition, params = header_params(headers.get("content-disposition", ""))
    if disposition != "form-data" or not params.get("name"):
        raise MalformedMultipart(
            "Every multipart part needs 'Content-Disposition: form-data; name=...'."
        )
    filename = params.get("filename")
    return Part(
        name=_unescape_name(params["name"]),
        filename=None if filename is None else _unescape_name(filename),
        content_type=headers.get("content-type", ""),
        data=data,
    )


def parse_form(body: bytes, *, content_type: str, max_parts: int) -> list[Part]:
    """The parts of a multipart/form-data body, in order.

    Raises MalformedMultipart (with a message that says what is wrong) for a wrong
    Content-Type, a bad boundary, an unterminated body, a part without a name, or
    more than ``max_parts`` parts.
    """
    boundary = boundary_of(content_type)
    dash = b"--" + boundary
    delimiter = b"\r\n" + dash
    if body.startswith(dash):
        position = len(dash)
    else:  # a preamble is allowed before the first delimiter
        start = body.find(delimiter)
        if start < 0:
            raise MalformedMultipart("The multipart boundary is not in the body.")
        position = start + len(delimiter)
    parts: list[Part] = []
    while True:
        marker = body[position : position + 2]
        if marker == b"--":
            return parts  # the close delimiter; whatever follows is an epilogue
        if marker != b"\r\n":
            raise MalformedMultipart("A multipart delimiter is not followed by CRLF.")
        end = body.find(delimiter, position + 2)
        if end < 0:
            raise MalformedMultipart(
                "The multipart body ends before its closing boundary."
            )
        if len(parts) >= max_parts:
            raise MalformedMultipart(
                f"The multipart body has more than {max_parts} parts."
            )
        parts.append(_make_part(body[position + 2 : end]))
        position = end + len(delimiter)
