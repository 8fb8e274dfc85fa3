"""Everything the client raises derives from ClaimportalError, so a caller can
catch one class; the subclasses say what went wrong and what to do next."""

from typing import Any


class ClaimportalError(Exception):
    """Base class. ``str(error)`` is a sentence fit to show a person."""

    def to_dict(self) -> dict[str, Any]:
        return {"error": type(self).__name__, "message": str(self)}


class ConnectionFailed(ClaimportalError):
    """The server could not be reached (not running, wrong address, timeout)."""


class MalformedResponse(ClaimportalError):
    """The server answered, but not with the JSON this protocol expects:
    usually a base URL that points at something other than claimportal."""

    def __init__(self, message: str, *, status: int, path: str) -> None:
        super().__init__(message)
        self.status = status
        self.path = path


class ChallengeUnsupported(ClaimportalError):
    """The proof-of-work challenge is outside what wrangler would solve
    (k, g not positive integers, k*g above the ceiling, seed not 32 bytes)."""


class ProjectError(ClaimportalError):
    """The project to deploy is not usable: a missing file, a bad config, a
    binding this client cannot provision."""


class ApiError(ClaimportalError):
    """A Cloudflare-style error envelope: ``code`` is the first error's code,
    ``status`` the HTTP status, ``errors`` every ``{code, message}`` sent."""

    def __init__(
        self,
        *,
        status: int,
        path: str,
        errors: list[dict[str, Any]],
        retry_after: int | None = None,
    ) -> None:
        first = errors[0] if errors else {}
        self.status = status
        self.path = path
        self.errors = errors
        self.code = int(first.get("code") or 0)
        self.message = str(first.get("message") or f"HTTP {status}")
        self.retry_after = retry_after
        super().__init__(f"{self.message} [code: {self.code}]")

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "status": self.status,
            "code": self.code,
            "path": self.path,
            "errors": self.errors,
            **({"retryAfter": self.retry_after} if self.retry_after else {}),
        }


class AuthenticationFailed(ApiError):
    """401: no token, an unknown one, or one that stopped working. The message
    says which (claimed, expired, suspended); create a new account to go on."""


class NotFound(ApiError):
    """404: the account or resource does not exist for this token."""


class RateLimited(ApiError):
    """429: wait ``retry_after`` seconds before asking again."""


class ChallengeRefused(ApiError):
    """The server refused the proof of work: forged, expired or already used
    challenge, or a wrong solution (codes 1101-1105). Ask for a new challenge."""


class ProvisioningRefused(ApiError):
    """The server will not create an account for this caller now: a blocked
    network, credentials sent, an event code refused (1035-1041, 1110, 1120)."""


def error_for(
    *,
    status: int,
    path: str,
    errors: list[dict[str, Any]],
    retry_after: int | None = None,
) -> ApiError:
    """The most specific ApiError subclass for an error envelope."""
    code = int((errors[0] if errors else {}).get("code") or 0)
    if status == 429:
        kind: type[ApiError] = RateLimited
    elif 1100 <= code <= 1109:
        kind = ChallengeRefused
    elif 1035 <= code <= 1041 or 1110 <= code <= 1129:
        kind = ProvisioningRefused
    elif status == 401:
        kind = AuthenticationFailed
    elif status == 404:
        kind = NotFound
    else:
        kind = ApiError
    return kind(status=status, path=path, errors=errors, retry_after=retry_after)
