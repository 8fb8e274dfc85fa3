"""Pages for people. Thin: read through selectors, act through services."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import wraps
from http import HTTPStatus

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.cache import caches
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.cache import never_cache
from django.views.decorators.http import (
    require_GET,
    require_http_methods,
    require_POST,
    require_safe,
)

from accounts import selectors
from accounts.exceptions import ClaimError, DomainError, NotFound
from accounts.forms import ClaimActionForm, ConfirmClaimForm, OwnerTokenForm
from accounts.http import request_origin
from accounts.models import ClaimLink, CloudAccount
from accounts.services import claims
from accounts.services import health as health_service
from accounts.services.inventory import inventory_versions
from accounts.services.previews.status import preview_status
from accounts.services.provisioning import claim_url

# The raw claim key lives in the session once the link is opened, as Django's
# password reset keeps its token, so no later URL, history entry or Referer
# carries it. (allauth/layouts/entrance.html reads the same name.)
CLAIM_KEY = "claim_key"
CLAIM_QR = "claim_qr"
# Secrets shown once on the next page: a just-issued token, then forgotten.
SHOWN_ONCE = "shown_once"
MAX_KEY_LENGTH = 128  # real keys are 43 characters; anything longer is junk

STATUS_PAGES: dict[claims.ClaimStatus, tuple[str, HTTPStatus]] = {
    claims.ClaimStatus.UNKNOWN: ("accounts/claim_unknown.html", HTTPStatus.NOT_FOUND),
    claims.ClaimStatus.EXPIRED: ("accounts/claim_expired.html", HTTPStatus.GONE),
    claims.ClaimStatus.DELETED: ("accounts/claim_deleted.html", HTTPStatus.GONE),
    claims.ClaimStatus.YOURS: ("accounts/claim_yours.html", HTTPStatus.OK),
    claims.ClaimStatus.TAKEN: ("accounts/claim_taken.html", HTTPStatus.CONFLICT),
    claims.ClaimStatus.SUSPENDED: (
        "accounts/claim_suspended.html",
        HTTPStatus.FORBIDDEN,
    ),
}


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "accounts/home.html",
        {"api_base": request.build_absolute_uri("/client/v4")},
    )


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    checks = {
        "database": health_service.check_database(),
        "broker": health_service.check_broker(),
    }
    ok = all(checks.values())
    return JsonResponse(
        {"ok": ok, **checks},
        status=HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE,
    )


# --- Inventories -------------------------------------------------------------------

# How long a rendered inventory is kept: it is replaced as soon as it changes,
# so this bounds only a change whose new version the cache missed.
INVENTORY_SECONDS = 300


@dataclass(frozen=True)
class InventoryFragment:
    html: str  # the rendered accounts/_inventory.html
    workers: int


def inventory_fragments(accounts: list[CloudAccount]) -> dict[str, InventoryFragment]:
    """Each account's inventory as pages show it, by account id. Rendering
    100 resources costs more than the rest of a page, so the HTML is kept under
    the account's inventory version and made again only after a change."""
    cache = caches["default"]
    keys = {
        account_id: f"inventory:html:{account_id}:{version}"
        for account_id, version in inventory_versions(
            account_ids=[account.pk for account in accounts]
        ).items()
    }
    cached = cache.get_many(list(keys.values()))
    # Kept as a tuple of Django's SafeString and an int, which any later
    # version of this code can read back.
    fragments = {
        account_id: InventoryFragment(*cached[key])
        for account_id, key in keys.items()
        if key in cached
    }
    missing = [account for account in accounts if account.pk not in fragments]
    for account_id, inventory in selectors.inventories(accounts=missing).items():
        fragments[account_id] = InventoryFragment(
            html=render_to_string("accounts/_inventory.html", {"inventory": inventory}),
            workers=len(inventory.workers),
        )
    cache.set_many(
        {
            keys[a.pk]: (fragments[a.pk].html, fragments[a.pk].workers)
            for a in missing
            if a.pk in keys
        },
        INVENTORY_SECONDS,
    )
    return fragments


def inventory_fragment(account: CloudAccount) -> InventoryFragment:
    return inventory_fragments([account])[account.pk]


# --- Claiming ---------------------------------------------------------------------


def _origin_hash(request: HttpRequest) -> str:
    """Hashed as provisioning hashes it, so the trail can link the two."""
    return request_origin(request).origin_hash


def _claim_qr(request: HttpRequest, key: str) -> str:
    """The claim URL as an inline SVG QR code, for carrying the claim to a
    phone. It is the key in another form, so it lives where the key lives (the
    session) and goes with it; drawing it once per link saves each page view
    the ~15 ms that choosing the mask and building the path cost."""
    cached = request.session.get(CLAIM_QR)
    if cached and cached[0] == key:
        return cached[1]
    code = qrcode.QRCode(border=2, image_factory=qrcode.image.svg.SvgPathImage)
    code.add_data(claim_url(key))
    svg = code.make_image().to_string(encoding="unicode")
    request.session[CLAIM_QR] = (key, svg)
    return svg


def _forget_claim(request: HttpRequest) -> None:
    for name in (CLAIM_KEY, CLAIM_QR):
        request.session.pop(name, None)


def _held_link(request: HttpRequest) -> tuple[str | None, ClaimLink | None]:
    key = request.session.get(CLAIM_KEY)
    return key, selectors.claim_link_for_key(key=key) if key else None


def _status_of(request: HttpRequest, link: ClaimLink | None) -> claims.ClaimStatus:
    return claims.claim_status(
        link=link,
        user=request.user if request.user.is_authenticated else None,
        now=timezone.now(),
        declined=bool(getattr(link, "declined", False)),
    )


def _status_page(
    request: HttpRequest, status: claims.ClaimStatus, link: ClaimLink | None
) -> HttpResponse:
    template, code = STATUS_PAGES[status]
    account = link.account if link is not None else None
    return render(request, template, {"account": account}, status=code)


def _deadline(link: ClaimLink) -> datetime:
    """The last moment the link can be used: the earliest of its three ends."""
    account = link.account
    return min(link.expires_at, account.claim_expires_at, account.expires_at)


@never_cache
def claim_open(request: HttpRequest, key: str, tail: str = "") -> HttpResponse:
    """The URL wrangler printed: keep the key in the session and move to a
    key-less address. Changes nothing else (chat apps and scanners open it).
    A tail pasted after the key is ignored rather than logged as a 404."""
    # From here on, even an error report or a 405 log line sees only this path.
    request.path = request.path_info = reverse("accounts:claim_review")
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    request.session[CLAIM_KEY] = key[:MAX_KEY_LENGTH]
    response = redirect("accounts:claim_review")
    # The one address that holds the key is never anybody's Referer.
    response["Referrer-Policy"] = "no-referrer"
    return response


def _open_claim(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Pages about the claim this browser holds: the view gets the key and its
    link while the link is open; any other state gets its own page instead."""

    @wraps(view)
    def wrapper(request: HttpRequest) -> HttpResponse:
        key, link = _held_link(request)
        status = _status_of(request, link)
        if status is not claims.ClaimStatus.OPEN:
            return _status_page(request, status, link)
        return view(request, key, link)

    return wrapper


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@_open_claim
def claim_review(request: HttpRequest, key: str, link: ClaimLink) -> HttpResponse:
    """What the agent built, and the one button that makes it yours."""
    account = link.account
    form = None
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect_to_login(reverse("accounts:claim_review"))
        form = ConfirmClaimForm(request.POST)
        if form.is_valid():
            try:
                result = claims.confirm_claim(
                    key=key,
                    account_id=form.cleaned_data["account"],
                    user=request.user,
                    now=timezone.now(),
                    agent_grace=form.agent_grace,
                    origin_hash=_origin_hash(request),
                )
            except ClaimError:
                return _after_refusal(request)
            _forget_claim(request)
            request.session[SHOWN_ONCE] = {
                "account": account.pk,
                "claimed": True,
                "agent_until": (
                    result.agent_until.isoformat() if result.agent_until else None
                ),
                "token": result.agent_token.secret if result.agent_token else None,
            }
            return redirect("accounts:account", account.pk)
    elif request.user.is_authenticated:
        form = ConfirmClaimForm(initial={"account": account.pk})
    return render(
        request,
        "accounts/claim.html",
        {
            "account": account,
            "inventory": inventory_fragment(account),
            "previews": preview_status(account=account),
            "deadline": _deadline(link),
            "form": form,
            "qr_svg": _claim_qr(request, key),
        },
        status=(
            HTTPStatus.BAD_REQUEST
            if form is not None and form.errors
            else HTTPStatus.OK
        ),
    )


def _after_refusal(request: HttpRequest) -> HttpResponse:
    """A confirm or decline that the service refused: show the link's state as
    it is now; if it is still open, the person reviewed another link."""
    _key, link = _held_link(request)
    status = _status_of(request, link)
    if status is claims.ClaimStatus.OPEN:
        messages.warning(
            request,
            "The claim link in this browser changed since you opened this page. "
            "Please review it again.",
        )
        return redirect("accounts:claim_review")
    return _status_page(request, status, link)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@_open_claim
def claim_decline(request: HttpRequest, key: str, link: ClaimLink) -> HttpResponse:
    """Delete the whole deployment now, after a confirmation page."""
    account = link.account
    if request.method == "POST":
        form = ClaimActionForm(request.POST)
        if form.is_valid():
            try:
                claims.decline_claim(
                    key=key,
                    account_id=form.cleaned_data["account"],
                    now=timezone.now(),
                    user=request.user if request.user.is_authenticated else None,
                    origin_hash=_origin_hash(request),
                )
            except ClaimError:
                return _after_refusal(request)
            _forget_claim(request)
            return render(request, "accounts/claim_deleted.html", {"account": account})
    return render(
        request,
        "accounts/claim_decline.html",
        {
            "account": account,
            "inventory": inventory_fragment(account),
            "form": ClaimActionForm(initial={"account": account.pk}),
        },
    )


# --- Owned accounts ---------------------------------------------------------------


@never_cache
@login_required
@require_safe
def my_accounts(request: HttpRequest) -> HttpResponse:
    accounts = list(selectors.accounts_owned_by(user=request.user))
    found = inventory_fragments(accounts)
    return render(
        request,
        "accounts/mine.html",
        {"accounts": [(account, found[account.pk]) for account in accounts]},
    )


@never_cache
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def account_page(request: HttpRequest, account_id: str) -> HttpResponse:
    """One owned account: the inventory, preview links, and its API tokens."""
    account = selectors.owned_account(user=request.user, account_id=account_id)
    if account is None:
        raise Http404
    form = OwnerTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            issued = claims.create_owner_token(
                account_id=account.pk,
                user=request.user,
                now=timezone.now(),
                name=form.cleaned_data["name"],
                origin_hash=_origin_hash(request),
            )
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            request.session[SHOWN_ONCE] = {
                "account": account.pk,
                "token": issued.secret,
                "name": issued.token.name,
            }
        return redirect("accounts:account", account.pk)
    shown_once = request.session.get(SHOWN_ONCE)
    if shown_once and shown_once.get("account") == account.pk:
        del request.session[SHOWN_ONCE]
        if shown_once.get("agent_until"):
            shown_once["agent_until"] = parse_datetime(shown_once["agent_until"])
    else:
        shown_once = None
    return render(
        request,
        "accounts/account.html",
        {
            "account": account,
            "inventory": inventory_fragment(account),
            "previews": preview_status(account=account),
            "d1_usage": selectors.d1_usage(
                account_id=account.pk, since=timezone.now() - timedelta(days=1)
            ),
            "tokens": selectors.usable_tokens(
                account_id=account.pk, now=timezone.now()
            ),
            "form": form,
            "shown_once": shown_once,
            "api_base": settings.PUBLIC_BASE_URL + "/client/v4",
        },
        status=HTTPStatus.BAD_REQUEST if form.errors else HTTPStatus.OK,
    )


@never_cache
@login_required
@require_POST
def revoke_token(request: HttpRequest, account_id: str, token_id: int) -> HttpResponse:
    try:
        token = claims.revoke_owner_token(
            account_id=account_id,
            token_id=token_id,
            user=request.user,
            now=timezone.now(),
            origin_hash=_origin_hash(request),
        )
    except NotFound as exc:
        raise Http404 from exc
    messages.success(request, f"Token {token.prefix}… no longer works.")
    return redirect("accounts:account", account_id)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return render(request, "404.html", status=HTTPStatus.NOT_FOUND)


def server_error(request: HttpRequest) -> HttpResponse:
    return render(request, "500.html", status=HTTPStatus.INTERNAL_SERVER_ERROR)
