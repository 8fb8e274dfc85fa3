"""Bad input a schema cannot generate: broken multipart, odd bytes, odd sizes,
traversal and SQL in names. Each gets an error in the envelope (or is taken
literally), never a 5xx, never a half-written resource, never a stray file."""

import json
from http import HTTPStatus

import pytest
from django.db import connection

from accounts.models import KVEntry, WorkerScript
from tests.cloudapi import AccountClient, ok
from tests.workerupload import asset_manifest, script_form, upload

pytestmark = pytest.mark.django_db

METADATA = {"main_module": "index.js", "compatibility_date": "2026-11-01"}


@pytest.fixture
def api(client, provision):
    return AccountClient(client, provision())


def failed(response, status: int = HTTPStatus.BAD_REQUEST) -> int:
    """The error code of an envelope failure with ``status``."""
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert body["success"] is False and body["result"] is None
    (error,) = body["errors"]
    assert isinstance(error["code"], int) and error["message"]
    return error["code"]


def test_a_truncated_multipart_upload_is_refused_and_nothing_is_stored(api):
    body, content_type = script_form(METADATA)
    for cut in (len(body) // 2, len(body) - 5, 10):
        failed(upload(api, "workers/scripts/cut", (body[:cut], content_type)))
    assert not WorkerScript.objects.filter(name="cut").exists()


def test_a_boundary_that_is_not_the_bodys_is_refused(api):
    body, _ = script_form(METADATA)
    for content_type in (
        "multipart/form-data; boundary=not-the-one",
        "multipart/form-data",
        "multipart/form-data; boundary=" + "x" * 200,
        'multipart/form-data; boundary=""',
    ):
        failed(upload(api, "workers/scripts/wrong", (body, content_type)))
    assert not WorkerScript.objects.filter(name="wrong").exists()


def test_huge_headers_get_a_clear_answer(client, api):
    huge = "A" * 256 * 1024
    response = client.get(
        api.url("storage/kv/namespaces"), HTTP_AUTHORIZATION=f"Bearer {huge}"
    )
    failed(response, HTTPStatus.UNAUTHORIZED)
    # Headers nobody asked for change nothing.
    assert ok(api.get("storage/kv/namespaces", HTTP_X_FORWARDED_FOR=huge)) == []
    response = client.post(
        "/client/v4/provisioning/previews/challenge",
        HTTP_USER_AGENT=huge,
        HTTP_X_FORWARDED_FOR=",".join(["203.0.113.9"] * 20000),
    )
    assert response.status_code == HTTPStatus.OK
    assert response.json()["success"] is True


def test_bodies_that_are_not_utf8_or_not_json_are_400(api):
    for body in (b"\xff\xfe{", b'{"title": "\xc3\x28"}', b"\x00" * 64, b"{" * 3):
        failed(api.post("storage/kv/namespaces", body))
    failed(api.post("d1/database", b'{"name": "\xed\xa0\x80"}'))


def test_invalid_utf8_in_a_path_is_an_error_not_a_crash(client, api):
    ns = ok(api.post("storage/kv/namespaces", {"title": "bytes"}))["id"]
    for path in (
        f"storage/kv/namespaces/{ns}/values/%FF%FE",
        "workers/scripts/%C3%28",
        "d1/database/%ED%A0%80",
        "queues/%80",
    ):
        response = api.get(path)
        assert response.status_code < 500, path
        assert response.json()["success"] is False


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_deeply_nested_json_is_400(api, depth):
    body = "[" * depth + "]" * depth
    failed(api.post("storage/kv/namespaces", body))
    nested = '{"a":' * depth + "1" + "}" * depth
    failed(api.post("queues", nested))


@pytest.mark.parametrize(
    "path, body",
    [
        ("storage/kv/namespaces", '{"title": 1e400}'),
        ("storage/kv/namespaces", '{"title": -1e400}'),
        ("queues", '{"queue_name": "q", "settings": {"delivery_delay": 1e999}}'),
        (
            "queues",
            f'{{"queue_name": "q", "settings": {{"delivery_delay": {10**22}}}}}',
        ),
        ("d1/database", '{"name": 99999999999999999999999999999999999}'),
        ("hyperdrive/configs", '{"name": "h", "origin": {"port": 1e400}}'),
    ],
)
def test_numbers_out_of_range_are_400(api, path, body):
    failed(api.post(path, body))


def test_numbers_out_of_range_in_kv_writes_and_paging(api):
    ns = ok(api.post("storage/kv/namespaces", {"title": "numbers"}))["id"]
    base = f"storage/kv/namespaces/{ns}"
    for query in (
        "expiration=1e400",
        "expiration=99999999999999999999999",
        "expiration_ttl=-1",
        "expiration_ttl=NaN",
    ):
        response = api.put(f"{base}/values/k?{query}", b"v")
        assert response.status_code == HTTPStatus.BAD_REQUEST, query
    bulk = [{"key": "k", "value": "v", "expiration": 10**30}]
    failed(api.put(f"{base}/bulk", bulk))
    bulk = [{"key": "k", "value": "v", "expiration_ttl": 1e300}]
    failed(api.put(f"{base}/bulk", bulk))
    for query in ("limit=99999999999999999999", "limit=-5", "limit=1e400"):
        assert api.get(f"{base}/keys?{query}").status_code < 500, query
    assert not KVEntry.objects.filter(namespace_id=ns).exists()
    for query in ("page=99999999999999999999", "per_page=-1", "page=NaN"):
        response = api.get(f"storage/kv/namespaces?{query}")
        assert response.status_code < 500, query


def test_traversal_in_kv_keys_is_only_a_key(api, settings, tmp_path):
    ns = ok(api.post("storage/kv/namespaces", {"title": "paths"}))["id"]
    for key in ("../../etc/passwd", "..%2F..%2Fsecret", "a/../../b"):
        path = f"storage/kv/namespaces/{ns}/values/{key}"
        ok(api.put(path, b"inside"))
        response = api.get(path)
        assert response.status_code == HTTPStatus.OK and response.content == b"inside"
    stray = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(settings.MEDIA_ROOT in p.parents for p in stray), stray


@pytest.mark.parametrize(
    "path", ["/../../etc/passwd", "/a/../../b.html", "/a/./b", "../x", "/\x00"]
)
def test_traversal_in_asset_paths_is_refused(api, path):
    manifest = asset_manifest({path: b"x", "/ok.html": b"y"})
    response = api.post(
        "workers/scripts/site/assets-upload-session", {"manifest": manifest}
    )
    failed(response)


@pytest.mark.parametrize(
    "name",
    [
        "x'; DROP TABLE accounts_kventry; --",
        '" OR 1=1 --',
        "Robert'); DELETE FROM accounts_cloudaccount;--",
    ],
)
def test_sql_in_names_is_text_or_refused(api, name):
    created = ok(api.post("storage/kv/namespaces", {"title": name}))
    assert created["title"] == name
    response = api.post("d1/database", {"name": name})
    assert response.status_code in (HTTPStatus.OK, HTTPStatus.BAD_REQUEST)
    response = api.post("queues", {"queue_name": name})
    assert response.status_code in (HTTPStatus.OK, HTTPStatus.BAD_REQUEST)
    failed(upload(api, f"workers/scripts/{name}", script_form(METADATA)), 400)
    # Both tables the names aim at are still there, and hold what they held.
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM accounts_kventry")
        assert cursor.fetchone()[0] == 0
        cursor.execute("SELECT count(*) FROM accounts_cloudaccount")
        assert cursor.fetchone()[0] == 1
    listed = api.get("storage/kv/namespaces")
    titles = [n["title"] for n in ok(listed)]
    assert titles == [name]
    # The name goes back out as JSON text, escaped, never spliced in raw.
    assert json.dumps(name).encode() in listed.content
