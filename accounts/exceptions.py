"""Domain errors. Each carries the Cloudflare-style numeric code the API answers with
and the HTTP status; the API maps them to the envelope and pages to a template, in
one place each."""

from http import HTTPStatus


class DomainError(Exception):
    code: int = 10000
    status: int = HTTPStatus.BAD_REQUEST
    message: str = "The request could not be completed."

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
        if status is not None:
            self.status = status
        super().__init__(self.message)


class InvalidInput(DomainError):
    code = 10001
    status = HTTPStatus.BAD_REQUEST
    message = "The request body or parameters are not valid."


class PayloadTooLarge(DomainError):
    code = 10013
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


class ServiceUnavailable(DomainError):
    code = 10503
    status = HTTPStatus.SERVICE_UNAVAILABLE
    message = "The service is briefly unavailable. Try again shortly."


# --- Claims ---------------------------------------------------------------------


class ClaimError(DomainError):
    status = HTTPStatus.BAD_REQUEST


class ClaimLinkUnknown(ClaimError):
    status = HTTPStatus.NOT_FOUND
    message = "This claim link is not valid."


class ClaimExpired(ClaimError):
    status = HTTPStatus.GONE
    message = "This deployment was not claimed in time and has been deleted."


class AlreadyClaimed(ClaimError):
    status = HTTPStatus.CONFLICT
    message = "This deployment has already been claimed."


class AccountSuspended(ClaimError):
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
    code = 10061
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
