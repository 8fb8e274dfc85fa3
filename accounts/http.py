"""What pages and the API read off a request about where it came from."""

import ipaddress

from django.conf import settings
from django.http import HttpRequest

from accounts.models import User
from accounts.services.provisioning import ClientOrigin, client_origin


class SignedInRequest(HttpRequest):
    """The request a login_required view gets: its user is a person, never
    anonymous. Only a type; Django builds the request as usual."""

    user: User


def edge_client_address(get_response):
    """Middleware: a request that came over gunicorn's unix socket (REMOTE_ADDR
    empty), which only the edge can open, is from the address the edge saw;
    the edge replaces any X-Forwarded-For a client sent. From here on
    REMOTE_ADDR is the client's, for us, Django and allauth alike."""

    def middleware(request: HttpRequest):
        if request.META.get("REMOTE_ADDR", "") == "":
            forwarded = request.headers.get("X-Forwarded-For", "").strip()
            request.META["REMOTE_ADDR"] = _address(forwarded, "")
        return get_response(request)

    return middleware


def client_address(request: HttpRequest) -> str:
    """The client's IP: REMOTE_ADDR, or with CLAIMPORTAL_TRUSTED_PROXY_COUNT
    proxies in front, the address the outermost trusted proxy saw."""
    remote = request.META.get("REMOTE_ADDR", "")
    hops = settings.CLAIMPORTAL_TRUSTED_PROXY_COUNT
    if hops <= 0:
        return remote
    forwarded = [
        part.strip()
        for part in request.headers.get("X-Forwarded-For", "").split(",")
        if part.strip()
    ]
    if not forwarded:
        return remote
    return _address(forwarded[-min(hops, len(forwarded))], remote)


def _address(candidate: str, fallback: str) -> str:
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return fallback


def request_origin(request: HttpRequest) -> ClientOrigin:
    """The caller's origin, hashed and coarsened the same way everywhere, so the
    audit trail can link a claim or a report to the provisioning call."""
    return client_origin(client_address(request))
