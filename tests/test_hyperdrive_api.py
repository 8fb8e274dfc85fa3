"""Hyperdrive configs over client/v4: the password goes in and never comes out."""

from http import HTTPStatus

import pytest

from accounts.models import Certificate, HyperdriveConfig
from tests.cloudapi import AccountClient, error_code, ok

pytestmark = pytest.mark.django_db

HD = "hyperdrive/configs"
# What wrangler hyperdrive create --connection-string=... sends (spec 2.7).
ORIGIN = {
    "host": "127.0.0.1",
    "port": 5432,
    "scheme": "postgres",
    "database": "app",
    "user": "user",
    "password": "pass-word",
}


@pytest.fixture
def api(client, provision) -> AccountClient:
    return AccountClient(client, provision())


def create(api, name="hd1", **extra) -> dict:
    return ok(api.post(HD, {"name": name, "origin": dict(ORIGIN), **extra}))


def test_create_get_list_never_show_the_password(api):
    made = create(api, caching={"max_age": 60})
    assert len(made["id"]) == 32
    assert made["origin"] == {k: v for k, v in ORIGIN.items() if k != "password"}
    assert made["caching"] == {"max_age": 60}
    assert HyperdriveConfig.objects.get(pk=made["id"]).password == "pass-word"

    for response in [api.get(HD), api.get(f"{HD}/{made['id']}")]:
        assert b"pass-word" not in response.content
        assert b"password" not in response.content
    listed = api.get(HD).json()
    assert [c["name"] for c in listed["result"]] == ["hd1"]
    assert listed["result_info"]["total_count"] == 1


def test_patch_changes_what_it_names_and_keeps_the_password(api):
    made = create(api)
    path = f"{HD}/{made['id']}"
    patched = ok(api.patch(path, {"name": "renamed", "origin": {"port": 6543}}))
    assert patched["name"] == "renamed"
    assert patched["origin"]["port"] == 6543
    assert patched["origin"]["host"] == "127.0.0.1"
    stored = HyperdriveConfig.objects.get(pk=made["id"])
    assert stored.password == "pass-word"
    ok(api.patch(path, {"origin": {"password": "new-secret"}}))
    stored.refresh_from_db()
    assert stored.password == "new-secret"

    # PUT replaces the whole config, so it needs a whole origin.
    partial = api.put(path, {"name": "x", "origin": {"port": 1}})
    assert partial.status_code == HTTPStatus.BAD_REQUEST
    ok(api.put(path, {"name": "whole", "origin": dict(ORIGIN)}))
    assert ok(api.get(path))["caching"] == {"disabled": False}


def test_delete_and_not_found(api):
    made = create(api)
    ok(api.delete(f"{HD}/{made['id']}"))
    for response in [api.get(f"{HD}/{made['id']}"), api.delete(f"{HD}/{made['id']}")]:
        assert response.status_code == HTTPStatus.NOT_FOUND
        assert error_code(response) == 2002


@pytest.mark.parametrize(
    "change",
    [
        {"name": ""},
        {"origin": "postgres://user:pass@127.0.0.1/app"},
        {"origin": {**ORIGIN, "scheme": "redis"}},
        {"origin": {**ORIGIN, "port": 70000}},
        {"origin": {k: v for k, v in ORIGIN.items() if k != "password"}},
        {"origin": {k: v for k, v in ORIGIN.items() if k != "host"}},
        {"origin": {**ORIGIN, "service_id": "vpc"}},
        {"origin": {**ORIGIN, "user": "a\x00b"}},
        {"caching": {"max_age": -1}},
        {"caching": {"disabled": "yes"}},
        {"mtls": {"sslmode": "sometimes"}},
        {"mtls": {"ca_certificate_id": "0" * 32}},
        {"origin_connection_limit": 0},
    ],
)
def test_bad_configs_are_400_and_store_nothing(api, change):
    body = {"name": "hd1", "origin": dict(ORIGIN), **change}
    response = api.post(HD, body)
    assert response.status_code == HTTPStatus.BAD_REQUEST, response.content
    assert not HyperdriveConfig.objects.exists()


def test_mtls_names_this_accounts_certificates(api, client, provision):
    ca = Certificate.objects.create(
        account=api.account, kind=Certificate.Kind.CA, certificate="pem"
    )
    made = create(api, mtls={"ca_certificate_id": ca.id, "sslmode": "verify-full"})
    assert made["mtls"] == {"ca_certificate_id": ca.id, "sslmode": "verify-full"}
    # A CA is not a client certificate, and another account's CA is not ours.
    wrong_kind = api.post(
        HD,
        {"name": "b", "origin": dict(ORIGIN), "mtls": {"mtls_certificate_id": ca.id}},
    )
    assert wrong_kind.status_code == HTTPStatus.BAD_REQUEST
    other = AccountClient(client, provision())
    theirs = other.post(
        HD, {"name": "c", "origin": dict(ORIGIN), "mtls": {"ca_certificate_id": ca.id}}
    )
    assert theirs.status_code == HTTPStatus.BAD_REQUEST


def test_names_are_unique_and_the_count_is_limited(api, settings):
    create(api, "hd1")
    assert api.post(HD, {"name": "hd1", "origin": dict(ORIGIN)}).status_code == 409
    settings.CLAIMPORTAL_HYPERDRIVE_MAX_CONFIGS = 1
    response = api.post(HD, {"name": "hd2", "origin": dict(ORIGIN)})
    assert error_code(response) == 2003


def test_another_accounts_config_is_invisible(client, provision):
    mine = AccountClient(client, provision())
    theirs = AccountClient(client, provision())
    made = create(theirs)
    assert ok(mine.get(HD)) == []
    assert mine.get(f"{HD}/{made['id']}").status_code == HTTPStatus.NOT_FOUND
    assert mine.patch(f"{HD}/{made['id']}", {"name": "x"}).status_code == 404
    assert mine.delete(f"{HD}/{made['id']}").status_code == HTTPStatus.NOT_FOUND


def test_odd_ids_are_4xx_never_5xx(api):
    for method in ("get", "delete"):
        assert api.call(method, f"{HD}/%00").status_code == HTTPStatus.NOT_FOUND
    renamed = api.patch(f"{HD}/%00", {"name": "x"})
    assert renamed.status_code == HTTPStatus.NOT_FOUND
