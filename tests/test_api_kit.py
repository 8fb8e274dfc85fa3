"""The envelope, bearer authentication and error mapping of client/v4."""

from http import HTTPStatus

import pytest
from django.test import Client

from accounts.models import ApiToken

pytestmark = pytest.mark.django_db


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_a_token_lists_its_own_account(client, provision):
    made = provision()
    response = client.get("/client/v4/accounts", **bearer(made.api_token))
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert body["success"] is True
    assert body["errors"] == []
    assert [a["id"] for a in body["result"]] == [made.account.id]


def test_no_token_is_a_401_in_the_envelope_with_a_pointer_to_auth_md(client):
    response = client.get("/client/v4/accounts")
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    body = response.json()
    assert body["success"] is False
    assert body["errors"][0]["code"] == 10000
    assert "auth_md" in response["WWW-Authenticate"]


def test_an_unknown_token_is_refused(client):
    response = client.get("/client/v4/accounts", **bearer("cpt_not-a-real-token"))
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["errors"][0]["message"] == "Invalid API token."


def test_a_revoked_token_says_what_happened_and_to_log_out(client, provision, now):
    made = provision()
    ApiToken.objects.filter(pk=made.api_token_id).update(
        revoked_at=now, revoked_because=ApiToken.RevokedBecause.CLAIMED
    )
    response = client.get("/client/v4/accounts", **bearer(made.api_token))
    message = response.json()["errors"][0]["message"]
    assert "claimed" in message
    assert "wrangler logout" in message


def test_writes_need_no_csrf_token_since_the_api_takes_no_cookies(provision):
    made = provision()
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(
        f"/client/v4/accounts/{made.account.id}/storage/kv/namespaces",
        data={"title": "no-csrf"},
        content_type="application/json",
        **bearer(made.api_token),
    )
    assert response.status_code == HTTPStatus.OK, response.content
    assert response.json()["result"]["title"] == "no-csrf"


def test_last_used_is_recorded(client, provision):
    made = provision()
    client.get("/client/v4/accounts", **bearer(made.api_token))
    assert ApiToken.objects.get(pk=made.api_token_id).last_used_at is not None


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
def test_unknown_routes_answer_in_the_envelope(client, method):
    response = getattr(client, method)("/client/v4/no/such/route")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response["Content-Type"] == "application/json"
    assert response.json()["success"] is False


def test_a_wrong_method_is_405_in_the_envelope(client, provision):
    made = provision()
    response = client.delete("/client/v4/accounts", **bearer(made.api_token))
    assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert response.json()["errors"][0]["code"] == 10405


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_json_bodies_with_non_json_numbers_are_refused(client, provision, constant):
    made = provision()
    response = client.post(
        f"/client/v4/accounts/{made.account.id}/storage/kv/namespaces",
        data=f'{{"title": {constant}}}',
        content_type="text/plain;charset=UTF-8",
        **bearer(made.api_token),
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert (
        response.json()["errors"][0]["message"] == "The request body is not valid JSON."
    )
