from django.urls import path, re_path

from . import accounts

urlpatterns = [
    path("accounts", accounts.accounts, name="api-accounts"),
    # Everything else under client/v4 answers in the envelope, never with HTML.
    re_path(r"^(?P<path>.*)$", accounts.unknown_route, name="api-unknown"),
]
