"""Domain errors, and the one table of their codes.

Every code an error can carry is a row of ERROR_CODES, which says what it means
and which HTTP status it answers with; a DomainError subclass names its code
and gets its status from the table (a class, or a raise with ``code=``, whose
code has no row fails at once). The API maps errors to the envelope and pages
to a template, in one place each."""

from dataclasses import dataclass
from http import HTTPStatus


@dataclass(frozen=True)
class ErrorCode:
    status: HTTPStatus
    meaning: str


S = HTTPStatus
ERROR_CODES: dict[int, ErrorCode] = {
    # Provisioning: event codes (wrangler prints these, spec 6.7), proof of work,
    # who may provision.
    1035: ErrorCode(S.BAD_REQUEST, "the event code is malformed"),
    1036: ErrorCode(S.NOT_FOUND, "no such event"),
    1037: ErrorCode(S.FORBIDDEN, "the event has not started"),
    1038: ErrorCode(S.GONE, "the event has ended"),
    1039: ErrorCode(S.FORBIDDEN, "the event is disabled"),
    1040: ErrorCode(S.CONFLICT, "the event has no accounts left"),
    1041: ErrorCode(S.SERVICE_UNAVAILABLE, "the event account could not be made"),
    1100: ErrorCode(S.FORBIDDEN, "the challenge is refused"),
    1101: ErrorCode(S.FORBIDDEN, "the challenge was not issued here"),
    1102: ErrorCode(S.GONE, "the challenge expired"),
    1103: ErrorCode(S.CONFLICT, "the challenge was used already"),
    1104: ErrorCode(S.BAD_REQUEST, "the solution is malformed"),
    1105: ErrorCode(S.FORBIDDEN, "the solution is wrong"),
    1110: ErrorCode(S.FORBIDDEN, "a caller with credentials may not provision"),
    1120: ErrorCode(S.FORBIDDEN, "the caller's network is blocked"),
    # Claims (pages; the client library reads them too).
    1200: ErrorCode(S.BAD_REQUEST, "the claim cannot be completed"),
    1201: ErrorCode(S.NOT_FOUND, "no such claim link"),
    1202: ErrorCode(S.GONE, "the claim window closed"),
    1203: ErrorCode(S.CONFLICT, "the account was claimed already"),
    1204: ErrorCode(S.FORBIDDEN, "the account is suspended"),
    # Resources.
    1404: ErrorCode(S.NOT_FOUND, "no such certificate"),
    1405: ErrorCode(S.BAD_REQUEST, "the certificate quota is full"),
    2002: ErrorCode(S.NOT_FOUND, "no such Hyperdrive config"),
    2003: ErrorCode(S.BAD_REQUEST, "the Hyperdrive quota is full"),
    7000: ErrorCode(S.NOT_FOUND, "no such route"),
    7003: ErrorCode(S.NOT_FOUND, "no such account, or not yours"),
    7404: ErrorCode(S.NOT_FOUND, "no such D1 database"),  # wrangler provisions
    7406: ErrorCode(S.BAD_REQUEST, "the D1 quota is full"),  # wrangler explains
    7410: ErrorCode(S.GONE, "the download link was used already"),
    7411: ErrorCode(S.GONE, "the link was made before the account was claimed"),
    7413: ErrorCode(S.REQUEST_ENTITY_TOO_LARGE, "the D1 export is too large"),
    7429: ErrorCode(S.TOO_MANY_REQUESTS, "the account runs as many D1 calls as it may"),
    7500: ErrorCode(S.BAD_REQUEST, "the D1 query failed"),
    7502: ErrorCode(S.CONFLICT, "a D1 database of that name exists"),  # wrangler
    7520: ErrorCode(S.BAD_REQUEST, "the moment is outside the time-travel window"),
    7521: ErrorCode(S.BAD_REQUEST, "the bookmark is not this database's"),
    10000: ErrorCode(S.UNAUTHORIZED, "no valid token"),
    10001: ErrorCode(S.BAD_REQUEST, "the input is not valid"),
    10007: ErrorCode(S.NOT_FOUND, "no such Worker, or part of one"),  # wrangler
    10009: ErrorCode(S.NOT_FOUND, "no such KV key"),
    10013: ErrorCode(S.NOT_FOUND, "no such KV namespace"),
    10014: ErrorCode(S.CONFLICT, "it conflicts with what exists"),
    10018: ErrorCode(S.BAD_REQUEST, "the KV namespace quota is full"),
    10021: ErrorCode(S.BAD_REQUEST, "the Worker upload is not valid"),  # wrangler
    10027: ErrorCode(S.REQUEST_ENTITY_TOO_LARGE, "the Worker is too large"),
    10031: ErrorCode(S.CONFLICT, "the subdomain is taken"),  # wrangler
    10032: ErrorCode(S.NOT_FOUND, "the subdomain is free"),  # wrangler
    10037: ErrorCode(S.BAD_REQUEST, "the Worker quota is full"),
    10042: ErrorCode(S.BAD_REQUEST, "R2 is not offered"),
    10053: ErrorCode(S.BAD_REQUEST, "the binding name is used already"),
    10056: ErrorCode(S.NOT_FOUND, "no such secret"),
    10057: ErrorCode(S.BAD_REQUEST, "the Worker has as many tails as it may"),
    10060: ErrorCode(S.BAD_REQUEST, "the GraphQL query is not answered here"),
    10061: ErrorCode(S.BAD_REQUEST, "the binding points at nothing of this account"),
    10062: ErrorCode(S.CONFLICT, "the source has an event subscription already"),
    10063: ErrorCode(S.NOT_FOUND, "no such event subscription"),
    10064: ErrorCode(S.BAD_REQUEST, "the product is not offered"),
    10065: ErrorCode(S.BAD_REQUEST, "the event source is not offered"),
    10074: ErrorCode(S.BAD_REQUEST, "too many cron triggers"),
    10079: ErrorCode(S.BAD_REQUEST, "the migration is not valid"),
    10090: ErrorCode(S.NOT_FOUND, "no such Worker service"),  # wrangler
    10222: ErrorCode(S.NOT_FOUND, "the Worker has no versions"),
    10400: ErrorCode(S.BAD_REQUEST, "the request could not be completed"),
    10403: ErrorCode(S.FORBIDDEN, "not allowed"),
    10405: ErrorCode(S.METHOD_NOT_ALLOWED, "the method is not allowed here"),
    10413: ErrorCode(S.REQUEST_ENTITY_TOO_LARGE, "the request is too large"),
    10429: ErrorCode(S.TOO_MANY_REQUESTS, "too many requests"),
    10500: ErrorCode(S.INTERNAL_SERVER_ERROR, "something unexpected failed here"),
    10503: ErrorCode(S.SERVICE_UNAVAILABLE, "briefly unavailable"),
    11000: ErrorCode(S.NOT_FOUND, "no such queue"),
    11001: ErrorCode(S.NOT_FOUND, "no such queue consumer"),
    11002: ErrorCode(S.BAD_REQUEST, "the queue quota is full"),
    11003: ErrorCode(S.TOO_MANY_REQUESTS, "the queue is full"),
}
del S


def status_of(code: int) -> HTTPStatus:
    """The HTTP status of ``code``; a code with no row is a bug, said at once."""
    try:
        return ERROR_CODES[code].status
    except KeyError:
        raise LookupError(f"error code {code} has no row in ERROR_CODES") from None


class DomainError(Exception):
    code: int = 10400
    status: int = HTTPStatus.BAD_REQUEST
    message: str = "The request could not be completed."

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        status = status_of(cls.code)
        declared = cls.__dict__.get("status")
        if declared is not None and declared != status:
            raise TypeError(
                f"{cls.__name__} says {declared} for code {cls.code}; "
                f"ERROR_CODES says {status}"
            )
        cls.status = status

    def __init__(
        self,
        message: str | None = None,
        *,
        code: int | None = None,
        status: int | None = None,
    ) -> None:
        self.message = message or self.message
        if code is not None:
            self.code = code
            self.status = status_of(code)
        if status is not None and status != self.status:
            raise TypeError(f"code {self.code} answers {self.status}, not {status}")
        super().__init__(self.message)


class InvalidInput(DomainError):
    code = 10001
    status = HTTPStatus.BAD_REQUEST
    message = "The request body or parameters are not valid."


class PayloadTooLarge(DomainError):
    code = 10413
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    message = "The request is larger than this service accepts."


class AuthenticationRequired(DomainError):
    code = 10000
    status = HTTPStatus.UNAUTHORIZED
    message = (
        "Authentication error: send an API token as 'Authorization: Bearer <token>'."
    )


class TokenRevoked(DomainError):
    """The token was real once; the message says what happened to it."""

    code = 10000
    status = HTTPStatus.UNAUTHORIZED


class AccountNotFound(DomainError):
    # Not 10007/10090: wrangler would read those as "worker not found" and go on.
    code = 7003
    status = HTTPStatus.NOT_FOUND
    message = "Could not route to this account: it does not exist or is not yours."


class NotFound(DomainError):
    code = 10007
    status = HTTPStatus.NOT_FOUND
    message = "Not found."


class Conflict(DomainError):
    code = 10014
    status = HTTPStatus.CONFLICT
    message = "That conflicts with something that already exists."


class RateLimited(DomainError):
    code = 10429
    status = HTTPStatus.TOO_MANY_REQUESTS
    message = "Too many requests. Try again later."

    def __init__(self, message: str | None = None, *, retry_after: int = 60) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Forbidden(DomainError):
    code = 10403
    status = HTTPStatus.FORBIDDEN
    message = "This operation is not allowed."


class UnexpectedError(DomainError):
    """What any exception we did not foresee is answered with: logged in full,
    told to the caller without a detail of it."""

    code = 10500
    message = "Something unexpected went wrong on our side; it has been logged."


class ServiceUnavailable(DomainError):
    code = 10503
    status = HTTPStatus.SERVICE_UNAVAILABLE
    message = "The service is briefly unavailable. Try again shortly."


# --- Claims ---------------------------------------------------------------------


class ClaimError(DomainError):
    code = 1200


class ClaimLinkUnknown(ClaimError):
    code = 1201
    status = HTTPStatus.NOT_FOUND
    message = "This claim link is not valid."


class ClaimExpired(ClaimError):
    code = 1202
    status = HTTPStatus.GONE
    message = "This deployment was not claimed in time and has been deleted."


class AlreadyClaimed(ClaimError):
    code = 1203
    status = HTTPStatus.CONFLICT
    message = "This deployment has already been claimed."


class AccountSuspended(ClaimError):
    code = 1204
    status = HTTPStatus.FORBIDDEN
    message = "This deployment was suspended by a moderator."


# --- Limits on D1 and the links it hands out ----------------------------------------


class D1TooBusy(RateLimited):
    code = 7429
    message = (
        "This account already runs as many D1 queries and exports at once as it "
        "may; retry when one has finished."
    )


class D1ExportTooLarge(PayloadTooLarge):
    code = 7413
    message = "The export is larger than this service hands out."


class LinkUsed(NotFound):
    code = 7410
    status = HTTPStatus.GONE
    message = "This download link was used already: run the export again."


class LinkRevoked(NotFound):
    code = 7411
    status = HTTPStatus.GONE
    message = (
        "This link was made before the deployment was claimed, and a claim ends "
        "every link made before it: ask for a new one."
    )


# --- D1 time travel, GraphQL, event subscriptions, products not offered ---------


class TimeTravelOutOfWindow(DomainError):
    code = 7520
    status = HTTPStatus.BAD_REQUEST
    message = "That moment is outside this database's time-travel window."


class BookmarkInvalid(DomainError):
    code = 7521
    status = HTTPStatus.BAD_REQUEST
    message = (
        "That bookmark does not belong to this database; get one with "
        "'wrangler d1 time-travel info'."
    )


class GraphQLNotSupported(DomainError):
    code = 10060
    status = HTTPStatus.BAD_REQUEST
    message = (
        "This GraphQL query is not answered here: temporary accounts answer the "
        "D1 analytics queries of 'wrangler d1 info' and 'wrangler d1 insights'."
    )


class EventSourceNotOffered(DomainError):
    code = 10065
    status = HTTPStatus.BAD_REQUEST


class SubscriptionExists(Conflict):
    code = 10062
    message = "This account already has an event subscription for that source."


class SubscriptionNotFound(NotFound):
    code = 10063
    message = "The event subscription could not be found."


class ProductNotOffered(DomainError):
    """A Cloudflare product temporary accounts do not carry (turnstile, containers)."""

    code = 10064
    status = HTTPStatus.BAD_REQUEST
