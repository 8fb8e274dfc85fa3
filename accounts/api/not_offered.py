"""Products temporary accounts do not carry, refused in words wrangler prints.

Turnstile goes through wrangler's v4 fetch, which prints the envelope's message.
Containers go through a generated client that prints only the HTTP status text,
so the reason is in the status line as well. Listing a Worker's container
applications answers an empty list: ``wrangler delete`` asks, and warns about
containers that "keep running" if the call fails.
"""

from django.http import HttpRequest, HttpResponse

from accounts.exceptions import DomainError, ProductNotOffered

from . import envelope
from .kit import endpoint

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


def _message(product: str, what: str) -> str:
    return (
        f"{product} is not available on temporary accounts: {what} Once you have "
        f"claimed this account, use {product} from your own Cloudflare account."
    )


TURNSTILE = _message("Turnstile", "there are no widgets to create or manage.")
CONTAINERS = _message("Containers", "remove the containers from the configuration.")


def refusal(error: DomainError) -> HttpResponse:
    """The error in the envelope and in the status line, for clients that print
    only the status text (wrangler's container client, ``r2 bulk put``)."""
    response = envelope.from_error(error)
    response.reason_phrase = error.message
    return response


def _turnstile(request: HttpRequest, account_id: str, rest: str = "") -> HttpResponse:
    raise ProductNotOffered(TURNSTILE)


def _containers(request: HttpRequest, account_id: str, rest: str = "") -> HttpResponse:
    if request.method == "GET" and rest.strip("/") == "applications":
        return envelope.success([])
    return refusal(ProductNotOffered(CONTAINERS))


turnstile = endpoint()(dict.fromkeys(METHODS, _turnstile))
containers = endpoint()(dict.fromkeys(METHODS, _containers))
