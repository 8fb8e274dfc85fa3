"""One HTTP call to the client/v4 API and the envelope around its answer."""

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any

from .errors import ConnectionFailed, MalformedResponse, error_for

USER_AGENT = "claimportal-client/0.1"


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: dict[str, str]  # names lower-cased


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect would resend the bearer token to wherever it points.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect())


def _lower(headers: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def api_base(base_url: str) -> str:
    """``https://host`` or ``https://host/client/v4`` to the API base."""
    parts = urllib.parse.urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"The base URL must be http(s)://host[:port], not {base_url!r}"
        )
    base = base_url.strip().rstrip("/")
    return base if base.endswith("/client/v4") else base + "/client/v4"


def send(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60,
) -> Response:
    """The raw response, whatever its status; ConnectionFailed if none came."""
    request = urllib.request.Request(  # noqa: S310 - api_base() allows http(s) only
        url,
        data=body,
        method=method,
        headers={"User-Agent": USER_AGENT, **(headers or {})},
    )
    try:
        with _opener.open(request, timeout=timeout) as answer:
            return Response(answer.status, answer.read(), _lower(answer.headers))
    except urllib.error.HTTPError as error:
        with error:
            return Response(error.code, error.read(), _lower(error.headers))
    except (TimeoutError, urllib.error.URLError, OSError, HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConnectionFailed(f"Could not reach {url}: {reason}") from exc


def envelope(response: Response, *, path: str) -> Any:
    """The ``result`` of a successful envelope, or the ApiError it carries."""
    if response.status in (204, 205) and not response.body.strip():
        return {}
    try:
        data = json.loads(response.body)
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict) or "success" not in data:
        raise MalformedResponse(
            f"{path} answered HTTP {response.status} without a v4 envelope; "
            "is the base URL a claimportal server?",
            status=response.status,
            path=path,
        )
    if data["success"] is True:
        return data.get("result")
    errors = [e for e in data.get("errors") or [] if isinstance(e, dict)]
    retry_after = response.headers.get("retry-after")
    raise error_for(
        status=response.status,
        path=path,
        errors=errors,
        retry_after=int(retry_after) if retry_after and retry_after.isdigit() else None,
    )
