"""The internal binding endpoints: who may call them, and their protocols.

These URLs exist only in the runtime's own URLconf; the public site 404s."""

import base64
import json

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import CloudAccount, KVEntry
from accounts.services import d1, kv, queues
from preview_runtime.services.specs import binding_token
from tests.preview_runtime import make_worker

pytestmark = pytest.mark.urls("preview_runtime.endpoints.urls")


@pytest.fixture
def setup(provision, now, db):
    account = provision().account
    namespace = kv.create_namespace(account=account, title="ns", now=now)
    database = d1.create_database(account=account, name="db", now=now)
    queue = queues.create_queue(account=account, name="jobs", now=now)
    script = make_worker(
        account,
        "app",
        "export default {}",
        bindings=[
            {"name": "KV", "type": "kv_namespace", "namespace_id": namespace.pk},
            {"name": "DB", "type": "d1", "id": str(database.pk)},
            {"name": "Q", "type": "queue", "queue_name": "jobs"},
        ],
    )
    token = binding_token(
        account_id=account.pk, version_id=str(script.current_version_id)
    )
    return account, script, namespace, database, queue, token


def call(
    client: Client, kind, resource, path, *, token, method="get", headers=None, **kw
):
    headers = {
        "Authorization": f"Bearer {token}",
        "X-Binding-Path": path,
        **(headers or {}),
    }
    return getattr(client, method)(
        f"/internal/preview/{kind}/{resource}", headers=headers, **kw
    )


def test_kv_protocol(client, setup):
    _account, _script, namespace, _db, _queue, token = setup
    put = call(
        client,
        "kv",
        namespace.pk,
        "/a%2Fb?urlencoded=true&expiration_ttl=3600",
        token=token,
        method="put",
        data=b"value",
        content_type="application/octet-stream",
        headers={"CF-KV-Metadata": '{"m":1}'},
    )
    assert put.status_code == 200, put.content
    entry = KVEntry.objects.get(namespace=namespace, key="a/b")
    assert bytes(entry.value) == b"value" and entry.metadata == {"m": 1}
    assert entry.expiration > timezone.now().timestamp() + 3500

    got = call(client, "kv", namespace.pk, "/a%2Fb?urlencoded=true", token=token)
    assert got.content == b"value"
    assert json.loads(got["CF-KV-Metadata"]) == {"m": 1}
    missing = call(client, "kv", namespace.pk, "/nope?urlencoded=true", token=token)
    assert missing.status_code == 404

    listed = call(
        client, "kv", namespace.pk, "/?prefix=a&key_count_limit=10", token=token
    )
    assert listed.json()["keys"][0]["name"] == "a/b"
    assert json.loads(listed.json()["keys"][0]["metadata"]) == {"m": 1}
    assert listed.json()["list_complete"] is True

    bulk = call(
        client,
        "kv",
        namespace.pk,
        "/bulk/get",
        token=token,
        method="post",
        data={"keys": ["a/b", "zz"], "withMetadata": True},
        content_type="application/json",
    )
    assert bulk.json() == {"a/b": {"value": "value", "metadata": {"m": 1}}, "zz": None}

    gone = call(
        client,
        "kv",
        namespace.pk,
        "/a%2Fb?urlencoded=true",
        token=token,
        method="delete",
    )
    assert gone.status_code == 200
    assert not KVEntry.objects.filter(namespace=namespace).exists()


def test_d1_protocol(client, setup):
    _account, _script, _ns, database, _queue, token = setup
    answer = call(
        client,
        "d1",
        database.pk,
        "/query?resultsFormat=ROWS_AND_COLUMNS",
        token=token,
        method="post",
        data=[
            {"sql": "CREATE TABLE t (a)"},
            {"sql": "INSERT INTO t VALUES (?)", "params": [7]},
            {"sql": "SELECT a FROM t"},
        ],
        content_type="application/json",
    ).json()
    assert len(answer) == 3
    assert answer[2]["results"] == {"columns": ["a"], "rows": [[7]]}
    assert answer[1]["meta"]["changes"] == 1
    objects = call(
        client,
        "d1",
        database.pk,
        "/query",
        token=token,
        method="post",
        data={"sql": "SELECT a FROM t"},
        content_type="application/json",
    ).json()
    assert objects[0]["results"] == [{"a": 7}]
    failed = call(
        client,
        "d1",
        database.pk,
        "/query",
        token=token,
        method="post",
        data={"sql": "SELECT * FROM nope"},
        content_type="application/json",
    ).json()
    assert failed["success"] is False and "no such table" in failed["error"]


def test_a_d1_batch_through_the_binding_is_all_or_nothing(client, setup):
    _account, _script, _ns, database, _queue, token = setup
    d1.run_queries(database=database, queries=[d1.Query(sql="CREATE TABLE t (a)")])
    failed = call(
        client,
        "d1",
        database.pk,
        "/query",
        token=token,
        method="post",
        data=[
            {"sql": "INSERT INTO t VALUES (?)", "params": [1]},
            {"sql": "INSERT INTO nope VALUES (2)"},
        ],
        content_type="application/json",
    ).json()

    assert failed["success"] is False and "no such table" in failed["error"]
    [rows] = d1.run_queries(
        database=database, queries=[d1.Query(sql="SELECT count(*) FROM t")]
    )
    assert rows.rows == [[0]]


def test_queue_protocol(client, setup):
    _account, _script, _ns, _db, queue, token = setup
    sent = call(
        client,
        "queue",
        "jobs",
        "/message",
        token=token,
        method="post",
        data=b'{"job":1}',
        content_type="application/octet-stream",
        headers={"X-Msg-Fmt": "json", "X-Msg-Delay-Secs": "30"},
    )
    assert sent.json()["metadata"]["metrics"]["backlogCount"] == 1
    batch = call(
        client,
        "queue",
        "jobs",
        "/batch",
        token=token,
        method="post",
        data={
            "messages": [
                {"body": base64.b64encode(b"hi").decode(), "contentType": "text"},
                {"body": base64.b64encode(b"\x01\x02").decode(), "contentType": "v8"},
            ]
        },
        content_type="application/json",
    )
    assert batch.json()["metadata"]["metrics"]["backlogCount"] == 3
    stored = {m.content_type: bytes(m.body) for m in queue.messages.all()}
    assert stored == {"json": b'{"job":1}', "text": b"hi", "v8": b"\x01\x02"}
    delayed = queue.messages.get(content_type="json")
    assert (delayed.visible_at - delayed.created_at).total_seconds() == 30


def test_every_call_is_checked_against_the_workers_own_bindings(
    client, setup, provision, now
):
    account, _script, namespace, _database, _queue, token = setup
    other = provision().account
    foreign = kv.create_namespace(account=other, title="theirs", now=now)
    unbound = kv.create_namespace(account=account, title="unbound", now=now)
    other_script = make_worker(
        other,
        "thief",
        "export default {}",
        bindings=[{"name": "KV", "type": "kv_namespace", "namespace_id": namespace.pk}],
    )
    thief = binding_token(
        account_id=other.pk, version_id=str(other_script.current_version_id)
    )
    forged = token[:-4] + "0000"
    refused = [
        call(client, "kv", foreign.pk, "/k", token=token),  # another account's
        call(client, "kv", unbound.pk, "/k", token=token),  # not bound
        call(client, "kv", namespace.pk, "/k", token=thief),  # bound, not theirs
        call(client, "kv", namespace.pk, "/k", token=forged),
        call(client, "kv", namespace.pk, "/k", token=""),
        call(client, "d1", "not-a-uuid", "/query", token=token, method="post"),
        call(client, "queue", "other", "/message", token=token, method="post"),
        call(client, "r2", "bucket", "/k", token=token),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert call(client, "kv", namespace.pk, "/k", token=token).status_code == 404

    # A suspended account's Workers lose their data at once.
    CloudAccount.objects.filter(pk=account.pk).update(
        state=CloudAccount.State.SUSPENDED
    )
    assert call(client, "kv", namespace.pk, "/k", token=token).status_code == 403


@pytest.mark.urls("claimportal.urls")
def test_the_public_site_does_not_know_these_urls(client, setup):
    *_, namespace, _db, _queue, token = setup
    answer = call(client, "kv", namespace.pk, "/k", token=token)
    assert answer.status_code == 404


@pytest.mark.parametrize(
    ("kind", "path", "body", "names"),
    [
        ("kv", "/bulk/get", {"keys": "one-key"}, "keys"),
        ("kv", "/bulk/get", {"keys": ["a"], "type": "xml"}, "type"),
        ("queue", "/batch", {"messages": [{"body": "not base64!"}]}, "body"),
    ],
)
def test_bad_binding_input_is_a_400_naming_the_field(
    client, setup, kind, path, body, names
):
    _account, _script, namespace, _db, queue, token = setup
    resource = namespace.pk if kind == "kv" else queue.name
    response = call(
        client,
        kind,
        resource,
        path,
        token=token,
        method="post",
        data=json.dumps(body),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert names in response.content.decode()
