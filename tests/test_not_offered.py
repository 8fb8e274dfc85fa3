"""Turnstile and Containers are refused in words that name the product, in the
envelope and (for clients that print only that) in the status line; R2's
refusal is in the status line too."""

from http import HTTPStatus

import pytest

from tests.cloudapi import AccountClient, error_code, ok

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client, provision) -> AccountClient:
    return AccountClient(client, provision())


@pytest.mark.parametrize(
    ("method", "path", "product"),
    [
        ("get", "challenges/widgets", "Turnstile"),
        ("post", "challenges/widgets", "Turnstile"),
        ("put", "challenges/widgets/0x4AAA", "Turnstile"),
        ("delete", "challenges/widgets/0x4AAA", "Turnstile"),
        ("get", "containers/me", "Containers"),
        ("get", "containers/applications/abc", "Containers"),
        ("delete", "containers/applications/abc", "Containers"),
        ("post", "containers/registries/r.example/credentials", "Containers"),
        ("get", "cloudchamber/deployments/v2", "Containers"),
    ],
)
def test_products_not_offered_are_named(api, method, path, product):
    response = api.call(method, path, {} if method in {"post", "put"} else None)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == 10064
    message = response.json()["errors"][0]["message"]
    assert f"{product} is not available on temporary accounts" in message


def test_container_refusals_carry_the_reason_in_the_status_line(api):
    response = api.get("containers/me")
    assert response.reason_phrase.startswith("Containers is not available")
    assert api.put("r2/buckets/files/objects/a").reason_phrase.startswith(
        "R2 is not available"
    )


def test_a_workers_container_applications_are_an_empty_list(api):
    # wrangler delete asks, and warns of containers left running if it fails.
    assert ok(api.get("containers/applications")) == []
