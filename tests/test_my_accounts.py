""" "Your accounts": what a person owns, its inventory, and API tokens they make
and revoke for continued use."""

from http import HTTPStatus

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiToken
from accounts.services.claims import confirm_claim
from tests.claim_builders import NEVER_SHOWN, full_deploy

pytestmark = pytest.mark.django_db

MINE = reverse("accounts:mine")


@pytest.fixture
def claim(provision):
    def make(user, name="hello-worker"):
        made = provision()
        full_deploy(made.account, name=name)
        confirm_claim(
            key=made.claim_key,
            account_id=made.account.pk,
            user=user,
            now=timezone.now(),
        )
        return made

    return make


def page_of(made) -> str:
    return reverse("accounts:account", args=[made.account.pk])


def test_your_accounts_needs_a_sign_in(client):
    response = client.get(MINE)

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith(reverse("account_login"))


def test_your_accounts_lists_what_you_own_with_resources_and_previews(
    client, claim, user, django_user_model
):
    mine = claim(user, name="my-worker")
    theirs = claim(django_user_model.objects.create_user("bob"), name="bob-worker")
    client.force_login(user)

    response = client.get(MINE)

    page = response.content.decode()
    assert response.status_code == HTTPStatus.OK
    assert "no-store" in response["Cache-Control"]
    assert mine.account.name in page
    assert f"http://my-worker.{mine.account.subdomain}.preview.localhost:8000" in page
    assert "my-worker-db" in page
    assert theirs.account.name not in page
    assert "bob-worker" not in page
    assert NEVER_SHOWN not in page


def test_your_accounts_costs_the_same_queries_for_one_account_or_four(
    client, claim, user
):
    client.force_login(user)
    claim(user, name="w0")
    with CaptureQueriesContext(connection) as one:
        client.get(MINE)
    for i in range(1, 4):
        claim(user, name=f"w{i}")

    with CaptureQueriesContext(connection) as four:
        page = client.get(MINE).content.decode()

    assert all(f"w{i}-cache" in page for i in range(4))
    assert len(four) == len(one)


def test_an_account_page_is_only_for_its_owner(client, claim, user, django_user_model):
    made = claim(user)
    client.force_login(django_user_model.objects.create_user("bob"))

    assert client.get(page_of(made)).status_code == HTTPStatus.NOT_FOUND
    assert client.post(page_of(made), {"name": "x"}).status_code == (
        HTTPStatus.NOT_FOUND
    )
    assert not ApiToken.objects.filter(kind=ApiToken.Kind.OWNER).exists()


def test_an_owner_token_is_shown_once_and_opens_the_api(client, claim, user):
    made = claim(user)
    client.force_login(user)

    created = client.post(page_of(made), {"name": "laptop"})

    assert created.status_code == HTTPStatus.FOUND
    token = ApiToken.objects.get(kind=ApiToken.Kind.OWNER)
    first = client.get(page_of(made)).content.decode()
    secret = first.split('<pre class="secret">')[1].split("</pre>")[0]
    assert secret.startswith(token.prefix)
    assert secret not in client.get(page_of(made)).content.decode()
    assert "laptop" in client.get(page_of(made)).content.decode()
    api = client.get("/client/v4/accounts", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.status_code == HTTPStatus.OK
    assert api.json()["result"][0]["id"] == made.account.pk


def test_a_token_needs_a_name(client, claim, user):
    made = claim(user)
    client.force_login(user)

    response = client.post(page_of(made), {"name": ""})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert b"This field is required" in response.content
    assert not ApiToken.objects.filter(kind=ApiToken.Kind.OWNER).exists()


def test_an_owner_revokes_a_token_and_the_api_refuses_it(client, claim, user):
    made = claim(user)
    client.force_login(user)
    client.post(page_of(made), {"name": "ci"})
    secret = (
        client.get(page_of(made))
        .content.decode()
        .split('<pre class="secret">')[1]
        .split("</pre>")[0]
    )
    token = ApiToken.objects.get(kind=ApiToken.Kind.OWNER)

    response = client.post(
        reverse("accounts:revoke_token", args=[made.account.pk, token.pk]),
        follow=True,
    )

    assert response.status_code == HTTPStatus.OK
    assert "no longer works" in response.content.decode()
    api = client.get("/client/v4/accounts", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.status_code == HTTPStatus.UNAUTHORIZED
    assert "revoked by the account owner" in api.json()["errors"][0]["message"]


def test_nobody_else_revokes_your_tokens(client, claim, user, django_user_model):
    made = claim(user)
    token = ApiToken.objects.create(
        account=made.account, kind=ApiToken.Kind.OWNER, prefix="cpt_x", secret_hash="h"
    )
    client.force_login(django_user_model.objects.create_user("bob"))

    response = client.post(
        reverse("accounts:revoke_token", args=[made.account.pk, token.pk])
    )

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None
    assert client.get(
        reverse("accounts:revoke_token", args=[made.account.pk, token.pk])
    ).status_code == (HTTPStatus.METHOD_NOT_ALLOWED)
