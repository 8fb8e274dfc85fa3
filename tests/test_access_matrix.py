"""Who may touch what: every authenticated client/v4 operation (from the
OpenAPI document, which test_openapi keeps in step with the URLconf) against
every kind of bad credential, and every claim and account page as a stranger,
another person and the owner. Refusals carry the documented code and never a
byte of the other account's data."""

import re
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.test import Client
from django.urls import reverse

from accounts.api.openapi import document
from accounts.models import ApiToken, CloudAccount
from accounts.services.claims import confirm_claim
from accounts.services.tokens import revoke_tokens
from tests.claim_builders import NEVER_SHOWN, full_deploy

pytestmark = pytest.mark.django_db

METHODS = ("get", "put", "post", "patch", "delete")
STATUS_ROUTE = "/provisioning/previews/{account_id}"
NO_SUCH_TOKEN = "cpa_" + "A" * 43
# Opened by an upload session's own token, never by an account token
# (test_assets_api checks which): any refusal will do here.
UPLOAD_TOKEN_ROUTE = ("post", "/accounts/{account_id}/workers/assets/upload")


def account_operations() -> list[tuple[str, str]]:
    """(method, path template) of every operation that takes a bearer token
    for the account in its path."""
    return [
        (method, path)
        for path, item in document()["paths"].items()
        for method, operation in item.items()
        if method in METHODS
        and operation.get("security") != []
        and "{account_id}" in path
        and path != STATUS_ROUTE
    ]


def fill(path: str, account_id: str) -> str:
    path = path.replace("{account_id}", account_id)
    return "/client/v4" + re.sub(r"\{\w+\}", "anything", path)


@pytest.fixture
def victim(provision, user, now):
    """An account full of things another caller must never see."""
    made = provision()
    full_deploy(made.account)
    return made


@pytest.fixture
def credentials(victim, provision, user, now):
    """Bearer tokens that must not open the victim's account, by kind."""
    revoked = provision()
    revoke_tokens(
        account=revoked.account, because=ApiToken.RevokedBecause.MODERATOR, now=now
    )
    expired = provision(now=now - timedelta(hours=3))
    claimed = provision()
    confirm_claim(
        key=claimed.claim_key, account_id=claimed.account.id, user=user, now=now
    )
    # (token, the account whose URL it is tried on): a dead token on its own
    # account's URL, a live one on the victim's.
    return {
        "none": (None, victim.account.id),
        "unknown": (NO_SUCH_TOKEN, victim.account.id),
        "revoked": (revoked.api_token, revoked.account.id),
        "expired account": (expired.api_token, expired.account.id),
        "claimed account": (claimed.api_token, claimed.account.id),
        "other account": (provision().api_token, victim.account.id),
    }


def refusal(response) -> tuple[int, int]:
    body = response.json()
    assert body["success"] is False and body["result"] is None
    return response.status_code, body["errors"][0]["code"]


def test_every_account_operation_refuses_every_bad_credential(victim, credentials):
    operations = account_operations()
    assert len(operations) > 80
    client = Client()
    victim_data = [NEVER_SHOWN.encode(), b"hello-worker", victim.account.name.encode()]
    seen = {}
    for method, template in operations:
        for kind, (token, account_id) in credentials.items():
            path = fill(template, account_id)
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            body = {} if method == "get" else {"data": b"{}"}
            response = getattr(client, method)(
                path, content_type="application/json", headers=headers, **body
            )
            expected = (
                (HTTPStatus.NOT_FOUND, 7003)
                if kind == "other account"
                else (HTTPStatus.UNAUTHORIZED, 10000)
            )
            seen[(method, template, kind)] = refusal(response)
            assert not any(secret in response.content for secret in victim_data)
            if (method, template) == UPLOAD_TOKEN_ROUTE:
                assert response.status_code in (400, 401, 404), kind
                continue
            assert seen[(method, template, kind)] == expected, (method, path, kind)
            if response.status_code == HTTPStatus.UNAUTHORIZED:
                # Every 401, a claimed account's old token too, says where
                # to get a token.
                assert response["WWW-Authenticate"].startswith("Bearer "), kind
    assert len(seen) == len(operations) * len(credentials)


def test_the_accounts_list_shows_only_the_callers_own_account(victim, credentials):
    client = Client()
    for kind, (token, _) in credentials.items():
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = client.get("/client/v4/accounts", headers=headers)
        if kind == "other account":
            ids = [a["id"] for a in response.json()["result"]]
            assert victim.account.id not in ids and len(ids) == 1
        else:
            assert refusal(response) == (HTTPStatus.UNAUTHORIZED, 10000), kind


def test_the_status_route_tells_a_token_only_about_its_own_account(
    victim, credentials, provision, user, now
):
    client = Client()
    url = "/client/v4/provisioning/previews/" + victim.account.id
    for kind in ("none", "unknown"):
        token = credentials[kind][0]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        assert refusal(client.get(url, headers=headers))[0] == HTTPStatus.UNAUTHORIZED
    other = {"Authorization": f"Bearer {credentials['other account'][0]}"}
    assert refusal(client.get(url, headers=other)) == (HTTPStatus.NOT_FOUND, 7003)
    # The agent's own, now revoked, token still learns its account was claimed.
    confirm_claim(
        key=victim.claim_key, account_id=victim.account.id, user=user, now=now
    )
    own = {"Authorization": f"Bearer {victim.api_token}"}
    response = client.get(url, headers=own)
    assert response.status_code == HTTPStatus.OK
    assert NEVER_SHOWN.encode() not in response.content


def test_claim_and_account_pages_for_stranger_other_person_and_owner(
    victim, user, django_user_model, now
):
    other = django_user_model.objects.create_user(
        username="eve", email="eve@example.com", password="another horse battery"
    )
    owner_browser, other_browser, stranger = Client(), Client(), Client()
    owner_browser.force_login(user)
    other_browser.force_login(other)
    link = reverse("accounts:claim", args=[victim.claim_key])
    review = reverse("accounts:claim_review")
    account_page = reverse("accounts:account", args=[victim.account.id])

    # Before the claim, the link is the capability: anyone holding it may look.
    for browser in (stranger, other_browser, owner_browser):
        assert browser.get(link).status_code == HTTPStatus.FOUND
        assert browser.get(review).status_code == HTTPStatus.OK
    # Without the link there is nothing to review.
    assert b"hello-worker" not in Client().get(review).content

    response = owner_browser.post(review, {"account": victim.account.id})
    assert response.status_code == HTTPStatus.FOUND
    account = CloudAccount.objects.get(pk=victim.account.id)
    assert account.owner == user

    # After it: the owner's page is the owner's alone.
    assert owner_browser.get(account_page).status_code == HTTPStatus.OK
    assert other_browser.get(account_page).status_code == HTTPStatus.NOT_FOUND
    login = stranger.get(account_page)
    assert login.status_code == HTTPStatus.FOUND
    assert login["Location"].startswith(reverse("account_login"))
    assert b"hello-worker" not in other_browser.get(reverse("accounts:mine")).content
    assert b"hello-worker" in owner_browser.get(reverse("accounts:mine")).content

    # The other person, still holding the link, can neither see nor take it.
    for browser in (other_browser, stranger):
        browser.get(link)
        page = browser.get(review)
        assert b"hello-worker-db" not in page.content
        browser.post(review, {"account": victim.account.id})
        assert CloudAccount.objects.get(pk=victim.account.id).owner == user

    # Nor revoke the owner's tokens.
    token = account.tokens.filter(revoked_at__isnull=True).first()
    if token is not None:
        url = reverse("accounts:revoke_token", args=[account.id, token.id])
        assert other_browser.post(url).status_code == HTTPStatus.NOT_FOUND
        token.refresh_from_db()
        assert token.revoked_at is None
