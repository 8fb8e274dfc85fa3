"""The public abuse-report form, linked from every unclaimed preview and claim
page. Thin: the service rate-limits and files the report."""

import math
from http import HTTPStatus

from django import forms
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from accounts.exceptions import NotFound, RateLimited
from accounts.http import request_origin
from accounts.services import reports


class AbuseReportForm(forms.Form):
    reason = forms.CharField(
        label="What is wrong with it?",
        min_length=10,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="For example: it imitates a bank's sign-in page, or spreads malware.",
    )
    contact_email = forms.EmailField(
        label="Your email (optional)",
        required=False,
        help_text="Only if you would like to hear what we did about it.",
    )


def _unavailable(request: HttpRequest, *, status: int, **context) -> HttpResponse:
    return render(request, "reports/report_unavailable.html", context, status=status)


@require_http_methods(["GET", "POST"])
def report_abuse(request: HttpRequest, account_id: str) -> HttpResponse:
    account = reports.reportable_account(account_id=account_id)
    if account is None:
        return _unavailable(request, status=HTTPStatus.NOT_FOUND)
    form = AbuseReportForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        try:
            reports.file_abuse_report(
                account_id=account.pk,
                reason=form.cleaned_data["reason"],
                contact_email=form.cleaned_data["contact_email"],
                origin=request_origin(request),
                now=timezone.now(),
            )
        except RateLimited as limited:
            response = _unavailable(
                request,
                status=HTTPStatus.TOO_MANY_REQUESTS,
                limited=limited.message,
                minutes=math.ceil(limited.retry_after / 60),
            )
            response["Retry-After"] = str(limited.retry_after)
            return response
        except NotFound:
            return _unavailable(request, status=HTTPStatus.NOT_FOUND)
        return redirect("accounts:report_sent")
    return render(
        request,
        "reports/report_form.html",
        {
            "account": account,
            "form": form,
            "preview_domain": settings.CLAIMPORTAL_PREVIEW_DOMAIN,
        },
        status=HTTPStatus.BAD_REQUEST if form.errors else HTTPStatus.OK,
    )


@require_GET
def report_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "reports/report_sent.html")
