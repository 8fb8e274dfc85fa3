"""Workers KV over client/v4: namespaces, keys, values, bulk calls, limits."""

from datetime import timedelta
from http import HTTPStatus

import pytest

from accounts.models import KVEntry, KVNamespace
from accounts.services import kv
from tests.cloudapi import AccountClient, concurrently, error_code, ok

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


# --- Keys and values ---------------------------------------------------------------


@pytest.fixture
def ns(api) -> str:
    """The path of a fresh namespace of ``api``'s account."""
    return f"{NS}/{ok(api.post(NS, {'title': 'data'}))['id']}"


@pytest.mark.parametrize(
    ("key", "encoded"),
    [
        ("plain", "plain"),
        ("with/slash and space", "with%2Fslash%20and%20space"),
        ("100%?#&=", "100%25%3F%23%26%3D"),
        ("üñï-☃", "%C3%BC%C3%B1%C3%AF-%E2%98%83"),
    ],
)
def test_values_round_trip_under_url_encoded_keys(api, ns, key, encoded):
    payload = b"\x00\xffbinary and text \xe2\x98\x83"
    ok(api.put(f"{ns}/values/{encoded}", payload, content_type="text/plain"))
    response = api.get(f"{ns}/values/{encoded}")
    assert response.status_code == HTTPStatus.OK
    assert response.content == payload  # raw bytes, not an envelope
    assert [k["name"] for k in ok(api.get(f"{ns}/keys"))] == [key]


def test_a_missing_key_is_404_and_delete_is_quiet(api, ns):
    response = api.get(f"{ns}/values/nothing")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == 10009
    ok(api.put(f"{ns}/values/k", b"v"))
    ok(api.delete(f"{ns}/values/k"))
    ok(api.delete(f"{ns}/values/k"))
    assert api.get(f"{ns}/values/k").status_code == HTTPStatus.NOT_FOUND


def multipart(parts: dict[str, tuple[str | None, bytes]]) -> tuple[bytes, str]:
    boundary = "----formdata-test-0123"
    body = b""
    for name, (filename, data) in parts.items():
        disposition = f'form-data; name="{name}"'
        if filename:
            disposition += f'; filename="{filename}"'
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename:
            body += b"Content-Type: application/octet-stream\r\n"
        body += b"\r\n" + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_metadata_comes_as_multipart_and_is_listed(api, ns):
    body, content_type = multipart(
        {"value": ("blob", b"\x01\x02"), "metadata": (None, b'{"owner": "ada"}')}
    )
    ok(api.put(f"{ns}/values/doc", body, content_type=content_type))
    assert api.get(f"{ns}/values/doc").content == b"\x01\x02"
    assert ok(api.get(f"{ns}/metadata/doc")) == {"owner": "ada"}
    assert ok(api.get(f"{ns}/keys")) == [{"name": "doc", "metadata": {"owner": "ada"}}]


@pytest.mark.parametrize(
    "parts",
    [
        {"metadata": (None, b"{}")},
        {"value": (None, b"v"), "metadata": (None, b"{not json")},
        {"value": (None, b"v"), "metadata": (None, b'"' + b"x" * 2000 + b'"')},
    ],
)
def test_bad_multipart_is_400(api, ns, parts):
    body, content_type = multipart(parts)
    response = api.put(f"{ns}/values/doc", body, content_type=content_type)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert api.get(f"{ns}/values/doc").status_code == HTTPStatus.NOT_FOUND
    broken = api.put(
        f"{ns}/values/doc", b"--x\r\nnope", content_type="multipart/form-data"
    )
    assert broken.status_code == HTTPStatus.BAD_REQUEST


def test_expiration_ttl_hides_the_key_once_passed(api, ns, now):
    ok(api.put(f"{ns}/values/soon?expiration_ttl=60", b"v"))
    ok(api.put(f"{ns}/values/later?expiration_ttl=3600", b"v"))
    ok(api.put(f"{ns}/values/never", b"v"))
    listed = {k["name"]: k.get("expiration") for k in ok(api.get(f"{ns}/keys"))}
    assert listed["never"] is None
    assert int(now.timestamp()) + 60 <= listed["soon"] <= int(now.timestamp()) + 70

    namespace = KVNamespace.objects.get(account=api.account)
    later = now + timedelta(seconds=120)
    live = [e.key for e in kv.list_keys(namespace=namespace, now=later).entries]
    assert live == ["later", "never"]
    with pytest.raises(kv.KeyNotFound):
        kv.get_value(namespace=namespace, key="soon", now=later)
    assert kv.bulk_get(namespace=namespace, keys=["soon"], now=later) == {"soon": None}


@pytest.mark.parametrize(
    "query",
    ["expiration_ttl=59", "expiration_ttl=abc", "expiration=1", "expiration=-5"],
)
def test_bad_expirations_are_400(api, ns, query):
    response = api.put(f"{ns}/values/k?{query}", b"v")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "expiration" in response.json()["errors"][0]["message"]


def test_an_absolute_expiration_is_kept(api, ns, now):
    at = int(now.timestamp()) + 3600
    ok(api.put(f"{ns}/values/k?expiration={at}", b"v"))
    assert ok(api.get(f"{ns}/keys")) == [{"name": "k", "expiration": at}]
    assert api.get(f"{ns}/values/k")["Expiration"] == str(at)


def test_list_pages_by_cursor_in_byte_order_with_prefix(api, ns):
    names = [f"user:{i:02d}" for i in range(25)] + ["B", "a", "é"]
    ok(api.put(f"{ns}/bulk", [{"key": n, "value": "x"} for n in names]))
    seen, cursor, pages = [], "", 0
    while True:
        query = f"prefix=user%3A&limit=10&cursor={cursor}"
        body = api.get(f"{ns}/keys?{query}").json()
        seen += [k["name"] for k in body["result"]]
        pages += 1
        cursor = body["result_info"]["cursor"]
        assert body["result_info"]["count"] == len(body["result"])
        if not cursor:
            break
    assert pages == 3
    assert seen == sorted(n for n in names if n.startswith("user:"))
    everything = [k["name"] for k in ok(api.get(f"{ns}/keys"))]
    assert everything == sorted(names, key=str.encode)  # "B" < "a" < ... < "é"


@pytest.mark.parametrize(
    "query", ["cursor=%21%21not-ours", "limit=5", "limit=5000", "limit=x"]
)
def test_bad_list_parameters_are_400(api, ns, query):
    assert api.get(f"{ns}/keys?{query}").status_code == HTTPStatus.BAD_REQUEST


def test_bulk_put_get_delete(api, ns, now):
    ok(
        api.put(
            f"{ns}/bulk",
            [
                {"key": "text", "value": "hello"},
                {"key": "json", "value": '{"n": 1}', "metadata": {"m": True}},
                {"key": "bin", "value": "AAH/", "base64": True},
                {"key": "ttl", "value": "t", "expiration_ttl": 600},
                {"key": "text", "value": "last one wins"},
            ],
        )
    )
    assert api.get(f"{ns}/values/bin").content == b"\x00\x01\xff"
    assert api.get(f"{ns}/values/text").content == b"last one wins"

    got = ok(api.post(f"{ns}/bulk/get", {"keys": ["text", "json", "nope"]}))
    assert got == {
        "values": {"text": "last one wins", "json": '{"n": 1}', "nope": None}
    }
    typed = ok(
        api.post(
            f"{ns}/bulk/get", {"keys": ["json"], "type": "json", "withMetadata": True}
        )
    )
    assert typed == {"values": {"json": {"value": {"n": 1}, "metadata": {"m": True}}}}

    ok(api.delete(f"{ns}/bulk", ["text", "json"]))
    ok(api.post(f"{ns}/bulk/delete", ["bin"]))
    assert [k["name"] for k in ok(api.get(f"{ns}/keys"))] == ["ttl"]


@pytest.mark.parametrize(
    "items",
    [
        {"key": "k", "value": "v"},
        [{"key": "k"}],
        [{"key": "k", "value": "v"}, {"key": "", "value": "v"}],
        [{"key": "k", "value": "not base64!", "base64": True}],
        [{"key": "k", "value": "v", "expiration_ttl": 1}],
        [{"key": "k\x00", "value": "v"}],
        [{"key": "\ud800", "value": "v"}],
        [{"key": "k", "value": "v", "metadata": {"x": "\x00"}}],
    ],
)
def test_a_bad_bulk_writes_nothing(api, ns, items):
    response = api.put(f"{ns}/bulk", items)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert ok(api.get(f"{ns}/keys")) == []


def test_bulk_get_refuses_bad_bodies(api, ns):
    assert api.post(f"{ns}/bulk/get", {"keys": "k"}).status_code == 400
    too_many = {"keys": [f"k{i}" for i in range(101)]}
    assert api.post(f"{ns}/bulk/get", too_many).status_code == 400
    ok(api.put(f"{ns}/values/t", b"not json"))
    as_json = api.post(f"{ns}/bulk/get", {"keys": ["t"], "type": "json"})
    assert as_json.status_code == HTTPStatus.BAD_REQUEST


def test_value_size_is_bounded_with_413(api, ns, settings):
    settings.CLAIMPORTAL_KV_MAX_VALUE_BYTES = 10
    response = api.put(f"{ns}/values/big", b"x" * 11)
    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert "at most 10 bytes" in response.json()["errors"][0]["message"]
    ok(api.put(f"{ns}/values/fits", b"x" * 10))
    big = api.put(f"{ns}/bulk", [{"key": "a", "value": "x" * 11}])
    assert big.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE


def test_keys_longer_than_512_bytes_are_refused(api, ns):
    key = "é" * 257  # 514 bytes
    assert api.put(f"{ns}/values/{key}", b"v").status_code == 400
    ok(api.put(f"{ns}/values/{'e' * 512}", b"v"))


def test_keys_of_another_accounts_namespace_are_unreachable(client, provision):
    mine = AccountClient(client, provision())
    theirs = AccountClient(client, provision())
    ns_id = ok(theirs.post(NS, {"title": "theirs"}))["id"]
    ok(theirs.put(f"{NS}/{ns_id}/values/k", b"secret"))
    for response in [
        mine.get(f"{NS}/{ns_id}/values/k"),
        mine.put(f"{NS}/{ns_id}/values/k", b"overwrite"),
        mine.get(f"{NS}/{ns_id}/keys"),
        mine.delete(f"{NS}/{ns_id}/bulk", ["k"]),
    ]:
        assert response.status_code == HTTPStatus.NOT_FOUND
        assert error_code(response) == 10013
    assert theirs.get(f"{NS}/{ns_id}/values/k").content == b"secret"


def test_deleting_a_namespace_deletes_its_keys(api, ns):
    ok(api.put(f"{ns}/bulk", [{"key": f"k{i}", "value": "v"} for i in range(5)]))
    ok(api.delete(ns))
    assert not KVEntry.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_of_one_new_key_all_succeed(provision, now):
    """Real concurrent transactions: the upsert never trips on the unique key."""
    account = provision().account
    namespace = kv.create_namespace(account=account, title="race", now=now)
    concurrently(
        6,
        lambda i: kv.put_value(
            namespace=namespace, key="hot", value=b"%d" % i, now=now
        ),
    )
    entry = KVEntry.objects.get(namespace=namespace, key="hot")
    assert bytes(entry.value) in {b"%d" % i for i in range(6)}


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_of_one_title_make_one_namespace(provision, now):
    account = provision().account
    ids = concurrently(
        4, lambda _: kv.create_namespace(account=account, title="t", now=now).id
    )
    assert len(set(ids)) == 1
    assert KVNamespace.objects.filter(account=account).count() == 1


@pytest.mark.parametrize(
    "path",
    [f"{NS}/%00", f"{NS}/not-an-id/keys", f"{NS}?page=1&per_page=1e3"],
)
def test_odd_ids_and_parameters_are_4xx_never_5xx(api, path):
    for method in ("get", "put", "delete"):
        assert 400 <= api.call(method, path).status_code < 500
