"""Pages for people. Thin: read through selectors, act through services."""

from http import HTTPStatus

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts import selectors
from accounts.services import health as health_service


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


@require_GET
def claim_landing(request: HttpRequest, key: str) -> HttpResponse:
    return render(request, "accounts/claim_unknown.html", status=HTTPStatus.NOT_FOUND)


@login_required
@require_GET
def my_accounts(request: HttpRequest) -> HttpResponse:
    accounts = selectors.accounts_owned_by(user=request.user)
    return render(request, "accounts/mine.html", {"accounts": accounts})


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return render(request, "404.html", status=HTTPStatus.NOT_FOUND)


def server_error(request: HttpRequest) -> HttpResponse:
    return render(request, "500.html", status=HTTPStatus.INTERNAL_SERVER_ERROR)
