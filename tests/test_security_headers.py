"""Every kind of page carries the browser protections: a CSP that runs only our
own script files (or nonced ones), no framing, no sniffing, no Referer to
other sites; production adds HSTS and cookies sent only over HTTPS."""

import re
import subprocess
import sys
from http import HTTPStatus

import pytest
from django.urls import reverse

from tests.claim_builders import full_deploy
from tests.conftest import ROOT
from tests.test_settings import PROD_ENV, manage

pytestmark = pytest.mark.django_db

SCRIPT_TAG = re.compile(rb"<script\b([^>]*)>", re.IGNORECASE)


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {
        name: values
        for name, *values in (part.split() for part in policy.split(";") if part)
    }


def assert_protected(response) -> None:
    csp = directives(response)
    assert csp["default-src"] == ["'self'"]
    assert [v for v in csp["script-src"] if not v.startswith("'nonce-")] == ["'self'"]
    assert "'unsafe-inline'" not in csp["script-src"]
    assert "'unsafe-eval'" not in csp["script-src"]
    assert csp["object-src"] == ["'none'"] and csp["base-uri"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] in ("same-origin", "no-referrer")
    if response["Content-Type"].startswith("text/html"):
        nonce = next(
            (v[7:-1] for v in csp["script-src"] if v.startswith("'nonce-")), None
        )
        for attributes in SCRIPT_TAG.findall(response.content):
            # Every script that runs is a file of ours or carries the nonce;
            # JSON data blocks do not run.
            runs = b"application/json" not in attributes
            assert (
                not runs
                or b"src=" in attributes
                or (nonce and f'nonce="{nonce}"'.encode() in attributes)
            ), attributes


@pytest.fixture
def owner(user, provision, client):
    made = provision()
    full_deploy(made.account)
    client.get(reverse("accounts:claim", args=[made.claim_key]))
    client.force_login(user)
    response = client.post(
        reverse("accounts:claim_review"), {"account": made.account.pk}
    )
    assert response.status_code == HTTPStatus.FOUND
    return made


def test_every_page_type_carries_the_headers(client, provision, owner, admin_client):
    pending = provision()
    full_deploy(pending.account)
    anonymous = type(client)()
    pages = {
        "home": (anonymous, "/"),
        "claim link": (anonymous, reverse("accounts:claim", args=[pending.claim_key])),
        "claim page": (anonymous, reverse("accounts:claim_review")),
        "login": (anonymous, reverse("account_login")),
        "signup": (anonymous, reverse("account_signup")),
        "not found": (anonymous, "/no/such/page"),
        "account": (client, reverse("accounts:account", args=[owner.account.pk])),
        "my accounts": (client, reverse("accounts:mine")),
        "admin login": (anonymous, "/admin/login/"),
        "admin index": (admin_client, "/admin/"),
        "admin account": (
            admin_client,
            f"/admin/accounts/cloudaccount/{owner.account.pk}/change/",
        ),
        "api": (anonymous, "/client/v4/accounts"),
        "api error": (anonymous, "/client/v4/no/such/route"),
        "auth.md": (anonymous, "/auth.md"),
    }
    statuses, referrers = {}, {}
    for name, (browser, path) in pages.items():
        response = browser.get(path)
        statuses[name] = response.status_code
        referrers[name] = response["Referrer-Policy"]
        assert_protected(response)
    # The one address with a key in it sends no Referer at all.
    assert referrers["claim link"] == "no-referrer"
    assert statuses == {
        **dict.fromkeys(pages, HTTPStatus.OK),
        "claim link": HTTPStatus.FOUND,
        "admin login": HTTPStatus.FOUND,  # people sign in through allauth
        "not found": HTTPStatus.NOT_FOUND,
        "api": HTTPStatus.UNAUTHORIZED,
        "api error": HTTPStatus.NOT_FOUND,
    }


def test_the_admin_scripts_run_under_the_nonce(admin_client):
    response = admin_client.get("/admin/")
    nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"])
    assert nonce and f'nonce="{nonce[1]}"'.encode() in response.content
    # A fresh nonce for every response.
    assert nonce[1].encode() not in admin_client.get("/admin/").content


PROBE = """
import django
django.setup()
from django.test import Client
host = {"host": "claims.example.test"}
response = Client().get("/accounts/login/", secure=True, headers=host)
print(response.status_code)
print(response["Strict-Transport-Security"])
cookie = response.cookies["csrftoken"]
print(bool(cookie["secure"]), bool(cookie["httponly"]), cookie["samesite"])
insecure = Client().get("/", headers=host)
print(insecure.status_code, insecure["Location"])
"""


@pytest.mark.slow
def test_production_sends_hsts_and_secure_cookies_and_redirects_to_https(tmp_path):
    # Production serves collected, hashed static files, as a deploy would build.
    env = {**PROD_ENV, "PYTHONPATH": str(ROOT), "CLAIMPORTAL_VAR_DIR": str(tmp_path)}
    collected = manage("collectstatic", "--no-input", "-v0", env=env)
    assert collected.returncode == 0, collected.stderr[-2000:]
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    status, hsts, cookie, redirect = result.stdout.split("\n")[:4]
    assert status == "200"
    assert hsts == "max-age=31536000; includeSubDomains; preload"
    assert cookie.split()[0] == "True"
    assert redirect == "301 https://claims.example.test/"
