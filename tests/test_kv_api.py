"""Workers KV over client/v4: namespaces, keys, values, bulk calls, limits."""

from http import HTTPStatus

import pytest

from accounts.models import KVNamespace
from tests.cloudapi import AccountClient, error_code, ok

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client, provision) -> AccountClient:
    return AccountClient(client, provision())


NS = "storage/kv/namespaces"


def test_create_then_list_with_wrangler_paging(api):
    created = ok(api.post(NS, {"title": "agentkv"}))
    assert len(created["id"]) == 32
    assert created["title"] == "agentkv"
    ok(api.post(NS, {"title": "another"}))

    page1 = api.get(NS + "?per_page=100&order=title&direction=asc&page=1").json()
    assert [n["title"] for n in page1["result"]] == ["agentkv", "another"]
    assert page1["result_info"]["total_count"] == 2
    # The SDK asks for the next page until it is empty.
    assert ok(api.get(NS + "?per_page=1000&page=2")) == []


def test_paging_splits_and_orders(api):
    for title in ["c", "a", "b"]:
        ok(api.post(NS, {"title": title}))
    first = ok(api.get(NS + "?per_page=2&page=1&order=title&direction=desc"))
    second = ok(api.get(NS + "?per_page=2&page=2&order=title&direction=desc"))
    assert [n["title"] for n in first + second] == ["c", "b", "a"]


def test_create_is_idempotent_by_title(api):
    """A redeploy that cannot inherit re-creates by title: it must get the same id."""
    first = ok(api.post(NS, {"title": "prov-worker-my-kv"}))
    again = ok(api.post(NS, {"title": "prov-worker-my-kv"}))
    assert again["id"] == first["id"]
    assert KVNamespace.objects.filter(account=api.account).count() == 1


@pytest.mark.parametrize(
    "body",
    [{}, {"title": ""}, {"title": 5}, {"title": "x" * 513}, {"title": "a\x00b"}],
)
def test_bad_titles_are_400(api, body):
    response = api.post(NS, body)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == 10001


def test_malformed_json_and_bad_paging_are_400(api):
    assert api.post(NS, b"{not json").status_code == HTTPStatus.BAD_REQUEST
    assert api.get(NS + "?page=0").status_code == HTTPStatus.BAD_REQUEST
    assert api.get(NS + "?per_page=abc").status_code == HTTPStatus.BAD_REQUEST
    assert api.get(NS + "?per_page=100000").status_code == HTTPStatus.BAD_REQUEST


def test_namespace_limit(api, settings):
    settings.CLAIMPORTAL_KV_MAX_NAMESPACES = 2
    ok(api.post(NS, {"title": "one"}))
    ok(api.post(NS, {"title": "two"}))
    response = api.post(NS, {"title": "three"})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == 10018
    assert "2 KV namespaces" in response.json()["errors"][0]["message"]
    # Asking again for an existing title is still fine at the limit.
    ok(api.post(NS, {"title": "one"}))


def test_rename_get_and_delete(api):
    ns = ok(api.post(NS, {"title": "old"}))
    ok(api.post(NS, {"title": "taken"}))
    renamed = ok(api.put(f"{NS}/{ns['id']}", {"title": "new"}))
    assert renamed["title"] == "new"
    assert ok(api.get(f"{NS}/{ns['id']}"))["title"] == "new"

    clash = api.put(f"{NS}/{ns['id']}", {"title": "taken"})
    assert clash.status_code == HTTPStatus.CONFLICT
    assert error_code(clash) == 10014

    ok(api.delete(f"{NS}/{ns['id']}"))
    missing = api.get(f"{NS}/{ns['id']}")
    assert missing.status_code == HTTPStatus.NOT_FOUND
    assert error_code(missing) == 10013
    assert error_code(api.delete(f"{NS}/{ns['id']}")) == 10013


def test_another_accounts_namespace_is_invisible(client, provision):
    mine = AccountClient(client, provision())
    theirs = AccountClient(client, provision())
    ns = ok(theirs.post(NS, {"title": "secret"}))
    assert ok(mine.get(NS)) == []
    assert mine.get(f"{NS}/{ns['id']}").status_code == HTTPStatus.NOT_FOUND
    assert mine.delete(f"{NS}/{ns['id']}").status_code == HTTPStatus.NOT_FOUND
    # Using my token on their account URL is refused outright.
    response = client.get(theirs.url(NS), **mine.auth)
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == 7003
