"""R2 is refused everywhere, with a message wrangler prints and a status that
stops auto-provisioning instead of skipping it."""

from http import HTTPStatus

import pytest

from tests.cloudapi import AccountClient, error_code

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client, provision) -> AccountClient:
    return AccountClient(client, provision())


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "r2/buckets"),
        ("post", "r2/buckets"),
        ("get", "r2/buckets/files"),
        ("delete", "r2/buckets/files"),
        ("put", "r2/buckets/files/objects/a/b.txt"),
        ("get", "r2/buckets/files/objects/a%2Fb.txt"),
        ("put", "r2/buckets/files/cors"),
        ("get", "event_notifications/r2/files/configuration"),
    ],
)
def test_every_r2_call_is_refused_clearly(api, method, path):
    body = {"name": "files"} if method in {"post", "put"} else None
    response = api.call(method, path, body)
    # 403 would make wrangler skip provisioning and carry on; 400 stops it.
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == 10042
    message = response.json()["errors"][0]["message"]
    assert "R2 is not available on temporary accounts" in message
    assert "r2_buckets" in message


def test_r2_still_needs_a_valid_token(client, provision):
    made = provision()
    response = client.get(f"/client/v4/accounts/{made.account.id}/r2/buckets")
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    other = AccountClient(client, provision())
    response = client.get(
        f"/client/v4/accounts/{made.account.id}/r2/buckets", **other.auth
    )
    assert error_code(response) == 7003
