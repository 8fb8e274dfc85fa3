from django.urls import path, re_path, register_converter

from . import report_views, views


class AccountIdConverter:
    """32 lowercase hex characters: anything else is a 404 before a query."""

    regex = "[0-9a-f]{32}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(AccountIdConverter, "account_id")

app_name = "accounts"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.health, name="health"),
    # Key-less pages first: a real key is 43 random characters, never these words.
    path("claim/", views.claim_review, name="claim_review"),
    path("claim/delete/", views.claim_decline, name="claim_decline"),
    path("claim/choose/", views.claim_choose, name="claim_choose"),
    path("claim/<str:key>/", views.claim_open, name="claim"),
    re_path(r"^claim/(?P<key>[^/]+)/(?P<tail>.+)$", views.claim_open),
    path("mine/", views.my_accounts, name="mine"),
    path("mine/<account_id:account_id>/", views.account_page, name="account"),
    path(
        "mine/<account_id:account_id>/name/",
        views.rename_account,
        name="rename_account",
    ),
    path(
        "mine/<account_id:account_id>/tokens/<int:token_id>/revoke/",
        views.revoke_token,
        name="revoke_token",
    ),
    path(
        "report/<account_id:account_id>/",
        report_views.report_abuse,
        name="report",
    ),
    path("report/sent/", report_views.report_sent, name="report_sent"),
]
