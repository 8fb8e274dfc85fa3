"""Pages for people. Thin: read through selectors, act through services."""

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from http import HTTPStatus
from pathlib import Path

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.safestring import SafeString
from django.views.decorators.cache import never_cache
from django.views.decorators.http import (
    require_GET,
    require_http_methods,
    require_POST,
    require_safe,
)

from accounts import selectors
from accounts.exceptions import ClaimError, DomainError, NotFound
from accounts.forms import (
    AccountNameForm,
    ClaimActionForm,
    ConfirmClaimForm,
    OwnerTokenForm,
)
from accounts.http import SignedInRequest, request_origin
from accounts.inventory_html import activity_html, inventory_html
from accounts.models import ClaimLink, CloudAccount
from accounts.services import claims, naming
from accounts.services import health as health_service
from accounts.services.provisioning import claim_url
from preview_runtime.services import placement
from preview_runtime.services.status import PreviewStatus, preview_status

# The raw claim key lives in a signed, HttpOnly cookie of the browser session
# once the link is opened, so no later URL, history entry or Referer carries it
# (as Django's password reset swaps its token out of the address), and a client
# that never comes back leaves nothing behind on the server. A second link
# opened while the first is still open waits in CLAIM_OFFERED until the person
# chooses: another site may have sent them to it. (The sign-in pages read it
# through open_held_claim, for their countdown.)
CLAIM_COOKIE = "claimportal_claim"
CLAIM_OFFERED = "claimportal_claim_offered"
_COOKIE_SALT = "claimportal.claim-cookie"
# Secrets shown once on the next page: a just-issued token, then forgotten.
SHOWN_ONCE = "shown_once"
MAX_KEY_LENGTH = 128  # real keys are 43 characters; anything longer is junk


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


@dataclass(frozen=True)
class InventoryFragment:
    html: str  # inventory_html's rendering
    workers: int


def _fragment(inventory: selectors.Inventory) -> InventoryFragment:
    return InventoryFragment(
        html=inventory_html(inventory), workers=len(inventory.workers)
    )


def inventory_fragments(accounts: list[CloudAccount]) -> dict[str, InventoryFragment]:
    """Each account's inventory as pages show it, by account id: one read."""
    found = selectors.inventories(accounts=accounts)
    return {account_id: _fragment(inventory) for account_id, inventory in found.items()}


def inventory_fragment(account: CloudAccount) -> InventoryFragment:
    return inventory_fragments([account])[account.pk]


@dataclass(frozen=True)
class Holdings:
    """What the claim and account pages show of what an account holds."""

    inventory: InventoryFragment
    activity: SafeString  # each Worker's code and recent events, as HTML
    previews: PreviewStatus


def _holdings_reads(account: selectors.Accounts) -> list[selectors.Read]:
    """The inventory, the Workers' activity, and which runtime to ask about
    the previews: sent together, one round trip to the database."""
    return [
        selectors.inventories_read(accounts=account),
        selectors.worker_activity_read(account=account),
        placement.state_dir_read(account=account),
    ]


def _holdings_from(
    account: CloudAccount,
    inventories: dict[str, selectors.Inventory],
    activity: list[selectors.WorkerActivity],
    state_dir: Path,
) -> Holdings:
    return Holdings(
        inventory=_fragment(inventories.get(account.pk, selectors.Inventory())),
        activity=activity_html(activity, settings.CLAIMPORTAL_MODULE_SOURCE_BYTES),
        previews=preview_status(account=account, state_dir=state_dir),
    )


def _holdings(account: CloudAccount) -> Holdings:
    reads = _holdings_reads(selectors.Accounts.by_id([account.pk]))
    return _holdings_from(account, *selectors.read_together(*reads))


def _link_with_holdings(key: str) -> tuple[ClaimLink | None, list]:
    """The link a claim key opens and what _holdings_reads find of its
    account, in one round trip: the reads find the account through the
    key's link. Rendering waits for the page to be shown."""
    link, *found = selectors.read_together(
        selectors.claim_link_read(key=key),
        *_holdings_reads(selectors.Accounts.of_claim_key(key)),
    )
    return link, found


# --- Claiming ---------------------------------------------------------------------


def _origin_hash(request: HttpRequest) -> str:
    """Hashed as provisioning hashes it, so the trail can link the two."""
    return request_origin(request).origin_hash


@functools.lru_cache(maxsize=256)
def _claim_qr(key: str) -> str:
    """The claim URL as an inline SVG QR code, for carrying the claim to a
    phone. It is the key in another form, so it is kept only in this process's
    memory; drawing it once per link saves each page view the ~15 ms that
    choosing the mask and building the path cost."""
    code = qrcode.QRCode(border=2, image_factory=qrcode.image.svg.SvgPathImage)
    code.add_data(claim_url(key))
    return code.make_image().to_string(encoding="unicode")


def _cookie_key(request: HttpRequest, name: str) -> str | None:
    return request.get_signed_cookie(name, default=None, salt=_COOKIE_SALT) or None


def _set_cookie_key(response: HttpResponse, name: str, key: str) -> None:
    response.set_signed_cookie(
        name,
        key,
        salt=_COOKIE_SALT,
        httponly=True,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
    )


def _link_for(key: str | None) -> ClaimLink | None:
    return selectors.claim_link_for_key(key=key) if key else None


@dataclass
class HeldClaim:
    """The claim this browser holds, and another link opened since, which
    waits for the person to choose between the two."""

    key: str | None
    link: ClaimLink | None
    offered_key: str | None = None
    offered_link: ClaimLink | None = None
    # What _holdings_reads found of the link's account, when the page asked
    # for them with the link.
    holdings_found: list | None = None

    def holdings(self) -> Holdings:
        assert self.link is not None
        if self.holdings_found is None:
            return _holdings(self.link.account)
        return _holdings_from(self.link.account, *self.holdings_found)

    def save(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        """Write what changed into the response's cookies, unless the view
        already set or dropped them."""
        if CLAIM_COOKIE in response.cookies:
            return response
        if self.key != _cookie_key(request, CLAIM_COOKIE):
            if self.key:
                _set_cookie_key(response, CLAIM_COOKIE, self.key)
            else:
                response.delete_cookie(CLAIM_COOKIE, samesite="Lax")
        if self.offered_key is None and CLAIM_OFFERED in request.COOKIES:
            response.delete_cookie(CLAIM_OFFERED, samesite="Lax")
        return response


def _held_claim(request: HttpRequest, *, with_holdings: bool = False) -> HeldClaim:
    """What the cookies hold, settled: an offered link that is not open is
    dropped, and one that is takes the place of a held link that no longer is.
    ``with_holdings`` reads what the held link's account holds with the link."""
    key = _cookie_key(request, CLAIM_COOKIE)
    if with_holdings and key:
        link, found = _link_with_holdings(key)
        held = HeldClaim(key=key, link=link, holdings_found=found)
    else:
        held = HeldClaim(key=key, link=_link_for(key))
    offered = _cookie_key(request, CLAIM_OFFERED)
    if offered is None or offered == key:
        return held
    offered_link = _link_for(offered)
    if _status_of(request, offered_link) is not claims.ClaimStatus.OPEN:
        return held
    if _status_of(request, held.link) is not claims.ClaimStatus.OPEN:
        return HeldClaim(key=offered, link=offered_link)
    return HeldClaim(
        key=key, link=held.link, offered_key=offered, offered_link=offered_link
    )


def open_held_claim(request: HttpRequest) -> ClaimLink | None:
    """The claim link this browser holds, while it can still be claimed."""
    link = _held_claim(request).link
    return link if _status_of(request, link) is claims.ClaimStatus.OPEN else None


def _forget_claim(response: HttpResponse) -> HttpResponse:
    for name in (CLAIM_COOKIE, CLAIM_OFFERED):
        response.delete_cookie(name, samesite="Lax")
    return response


def _status_of(request: HttpRequest, link: ClaimLink | None) -> claims.ClaimStatus:
    return claims.claim_status(
        link=link,
        user=request.user if request.user.is_authenticated else None,
        now=timezone.now(),
    )


def _status_page(
    request: HttpRequest, status: claims.ClaimStatus, link: ClaimLink | None
) -> HttpResponse:
    """The page for a link that cannot be acted on now."""
    page = claims.claim_page(status)
    account = link.account if link is not None else None
    return render(request, page.template, {"account": account}, status=page.http_status)


@never_cache
def claim_open(request: HttpRequest, key: str, tail: str = "") -> HttpResponse:
    """The URL wrangler printed: keep the key in the browser and move to a
    key-less address. Changes nothing on the server (chat apps and scanners
    open it). A link opened while the browser holds another open claim does not
    replace it: the review page asks which to keep. A tail pasted after the key
    is ignored rather than logged as a 404."""
    # From here on, even an error report or a 405 log line sees only this path.
    request.path = request.path_info = reverse("accounts:claim_review")
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    key = key[:MAX_KEY_LENGTH]
    held = _held_claim(request)
    if held.key != key and _status_of(request, held.link) is claims.ClaimStatus.OPEN:
        held.offered_key = key
    else:
        held = HeldClaim(key=key, link=None)
    response = held.save(request, redirect("accounts:claim_review"))
    if held.offered_key:
        _set_cookie_key(response, CLAIM_OFFERED, held.offered_key)
    # The one address that holds the key is never anybody's Referer.
    response["Referrer-Policy"] = "no-referrer"
    return response


def _open_claim(
    *, holdings: bool = False
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Pages about the claim this browser holds: the view gets the held claim
    while its link is open; any other state gets its own page instead, and a
    second open link the choice between the two. With ``holdings`` a page
    that is read (GET, HEAD) reads what the account holds with the link."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest) -> HttpResponse:
            held = _held_claim(
                request, with_holdings=holdings and request.method in ("GET", "HEAD")
            )
            status = _status_of(request, held.link)
            if status is not claims.ClaimStatus.OPEN:
                response = _status_page(request, status, held.link)
            elif held.offered_link is not None and request.method != "POST":
                response = _choice_page(request, held)
            else:
                response = view(request, held)
            return held.save(request, response)

        return wrapper

    return decorator


def _choice_page(request: HttpRequest, held: HeldClaim) -> HttpResponse:
    assert held.link is not None and held.offered_link is not None
    return render(
        request,
        "accounts/claim_choose.html",
        {
            "choices": [
                (held.link.account, "opened first"),
                (held.offered_link.account, "opened last"),
            ]
        },
        status=HTTPStatus.CONFLICT,
    )


@never_cache
@require_POST
def claim_choose(request: HttpRequest) -> HttpResponse:
    """Keep one of two open claim links, the one the person names."""
    held = _held_claim(request)
    form = ClaimActionForm(request.POST)
    chosen = form.cleaned_data["account"] if form.is_valid() else None
    if held.offered_link is not None and chosen == held.offered_link.account_id:
        held = HeldClaim(key=held.offered_key, link=held.offered_link)
    elif held.link is not None and chosen == held.link.account_id:
        held = HeldClaim(key=held.key, link=held.link)
    return held.save(request, redirect("accounts:claim_review"))


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@_open_claim(holdings=True)
def claim_review(request: HttpRequest, held: HeldClaim) -> HttpResponse:
    """What the agent built, and the one button that makes it yours."""
    assert held.key is not None and held.link is not None
    key, link = held.key, held.link
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
            if form.cleaned_data["name"]:
                naming.rename_account(
                    account_id=account.pk,
                    user=request.user,
                    name=form.cleaned_data["name"],
                )
            request.session[SHOWN_ONCE] = {
                "account": account.pk,
                "claimed": True,
                "agent_until": (
                    result.agent_until.isoformat() if result.agent_until else None
                ),
                "token": result.agent_token.secret if result.agent_token else None,
            }
            return _forget_claim(redirect("accounts:account", account.pk))
    elif request.user.is_authenticated:
        form = ConfirmClaimForm(initial={"account": account.pk, "name": account.name})
    holdings = held.holdings()
    return render(
        request,
        claims.claim_page(claims.ClaimStatus.OPEN).template,
        {
            "account": account,
            "inventory": holdings.inventory,
            "previews": holdings.previews,
            "activity": holdings.activity,
            "deadline": link.deadline,
            "form": form,
            "qr_svg": _claim_qr(key),
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
    link = _held_claim(request).link
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
@_open_claim()
def claim_decline(request: HttpRequest, held: HeldClaim) -> HttpResponse:
    """Delete the whole deployment now, after a confirmation page."""
    assert held.key is not None and held.link is not None
    key, account = held.key, held.link.account
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
            return _forget_claim(
                render(
                    request,
                    claims.claim_page(claims.ClaimStatus.DELETED).template,
                    {"account": account},
                )
            )
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
def my_accounts(request: SignedInRequest) -> HttpResponse:
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
def account_page(request: SignedInRequest, account_id: str) -> HttpResponse:
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
    holdings = _holdings(account)
    return render(
        request,
        "accounts/account.html",
        {
            "account": account,
            "inventory": holdings.inventory,
            "previews": holdings.previews,
            "activity": holdings.activity,
            "d1_usage": selectors.d1_usage(
                account_id=account.pk, since=timezone.now() - timedelta(days=1)
            ),
            "tokens": selectors.usable_tokens(
                account_id=account.pk, now=timezone.now()
            ),
            "form": form,
            "name_form": AccountNameForm(initial={"name": account.name}),
            "shown_once": shown_once,
            "api_base": settings.PUBLIC_BASE_URL + "/client/v4",
        },
        status=HTTPStatus.BAD_REQUEST if form.errors else HTTPStatus.OK,
    )


@never_cache
@login_required
@require_POST
def rename_account(request: SignedInRequest, account_id: str) -> HttpResponse:
    form = AccountNameForm(request.POST)
    if not form.is_valid():
        for error in form.errors.get("name", []):
            messages.error(request, str(error))  # an ErrorList yields text
        return redirect("accounts:account", account_id)
    try:
        account = naming.rename_account(
            account_id=account_id, user=request.user, name=form.cleaned_data["name"]
        )
    except NotFound as exc:
        raise Http404 from exc
    messages.success(request, f"Renamed to {account.name}.")
    return redirect("accounts:account", account_id)


@never_cache
@login_required
@require_POST
def revoke_token(
    request: SignedInRequest, account_id: str, token_id: int
) -> HttpResponse:
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
