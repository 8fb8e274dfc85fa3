"""The official Cloudflare Python SDK (PyPI ``cloudflare`` 5.9.0, unmodified)
drives a temporary account as a platform backend would: ``base_url`` pointed at
a live server, the account's token, every resource kind, and every list
iterated to its end with pages of one item, so paging is exercised for real."""

import pytest
from cloudflare import Cloudflare

from accounts.models import (
    Certificate,
    D1Database,
    HyperdriveConfig,
    KVEntry,
    KVNamespace,
    Queue,
    WorkerScript,
)
from tests.cloudapi import make_pem

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MODULE = "application/javascript+module"
INDEX = (
    b'import { greet } from "./lib.js";\n'
    b"export default { fetch() { return new Response(greet()); } };\n"
)
LIB = b'export function greet() { return "hello from the sdk"; }\n'


@pytest.fixture
def sdk(live_server, provision):
    made = provision()
    client = Cloudflare(
        api_token=made.api_token,
        base_url=f"{live_server.url}/client/v4",
        max_retries=0,
        timeout=60,
    )
    return client, made.account.id


def test_the_official_sdk_drives_every_resource_kind(sdk, tmp_path):
    cf, account = sdk

    # Accounts: a token opens one account, and the listing ends.
    assert [a.id for a in cf.accounts.list(per_page=1)] == [account]

    # Workers: upload with modules as the SDK sends them (parts named "files").
    kv = cf.kv.namespaces.create(account_id=account, title="sdk-kv")
    script = cf.workers.scripts.update(
        "sdk-worker",
        account_id=account,
        metadata={
            "main_module": "index.js",
            "compatibility_date": "2025-01-01",
            "bindings": [{"type": "kv_namespace", "name": "KV", "namespace_id": kv.id}],
        },
        files=[("index.js", INDEX, MODULE), ("lib.js", LIB, MODULE)],
    )
    assert script.id == "sdk-worker"
    stored = WorkerScript.objects.get(account_id=account, name="sdk-worker")
    assert [m.name for m in stored.current_version.modules.all()] == [
        "index.js",
        "lib.js",
    ]
    content = cf.workers.scripts.get("sdk-worker", account_id=account)
    assert INDEX.decode() in content and LIB.decode() in content
    assert 'filename="lib.js"' in content
    assert [s.id for s in cf.workers.scripts.list(account_id=account)] == ["sdk-worker"]

    # Secrets.
    cf.workers.scripts.secrets.update(
        "sdk-worker",
        account_id=account,
        name="API_KEY",
        text="s3cret",
        type="secret_text",
    )
    names = [
        s.name
        for s in cf.workers.scripts.secrets.list("sdk-worker", account_id=account)
    ]
    assert names == ["API_KEY"]
    got = cf.workers.scripts.secrets.get(
        "API_KEY", account_id=account, script_name="sdk-worker"
    )
    assert got.name == "API_KEY"
    cf.workers.scripts.secrets.delete(
        "API_KEY", account_id=account, script_name="sdk-worker"
    )
    assert list(cf.workers.scripts.secrets.list("sdk-worker", account_id=account)) == []

    # Versions and deployments, listed one per page to the end.
    # SDK 5.9 cannot build its own typed result for this call (its
    # ResourcesBindings is a plain class pydantic refuses), so read the raw answer.
    raw = cf.workers.scripts.versions.with_raw_response.create(
        "sdk-worker",
        account_id=account,
        metadata={
            "main_module": "index.js",
            "compatibility_date": "2025-01-02",
            "bindings": [{"type": "kv_namespace", "name": "KV", "namespace_id": kv.id}],
        },
        files=[("index.js", INDEX, MODULE), ("lib.js", LIB, MODULE)],
    )
    version_id = raw.json()["result"]["id"]
    versions = list(
        cf.workers.scripts.versions.list("sdk-worker", account_id=account, per_page=1)
    )
    assert len(versions) == stored.versions.count() >= 2
    assert versions[0].id == version_id
    got = cf.workers.scripts.versions.with_raw_response.get(
        version_id, account_id=account, script_name="sdk-worker"
    )  # raw for the same reason as create
    assert got.json()["result"]["id"] == version_id
    cf.workers.scripts.deployments.create(
        "sdk-worker",
        account_id=account,
        strategy="percentage",
        versions=[{"percentage": 100, "version_id": version_id}],
    )
    deployments = list(
        cf.workers.scripts.deployments.list(
            "sdk-worker", account_id=account, per_page=1
        )
    )
    assert len(deployments) == stored.deployments.count() >= 2
    assert deployments[0].versions[0]["version_id"] == version_id
    stored.refresh_from_db()
    assert str(stored.current_version_id) == version_id

    # Settings, schedules, subdomain.
    cf.workers.scripts.settings.edit(
        "sdk-worker", account_id=account, logpush=False, tags=["sdk"]
    )
    assert cf.workers.scripts.settings.get("sdk-worker", account_id=account).tags == [
        "sdk"
    ]
    settings = cf.workers.scripts.script_and_version_settings.get(
        "sdk-worker", account_id=account
    )
    assert "KV" in {b.name for b in settings.bindings}
    cf.workers.scripts.schedules.update(
        "sdk-worker", account_id=account, body=[{"cron": "*/5 * * * *"}]
    )
    schedules = cf.workers.scripts.schedules.get("sdk-worker", account_id=account)
    assert [s.cron for s in schedules.schedules] == ["*/5 * * * *"]
    cf.workers.scripts.subdomain.create("sdk-worker", account_id=account, enabled=True)
    assert cf.workers.scripts.subdomain.get("sdk-worker", account_id=account).enabled
    # KV: namespaces paged, values, keys by cursor.
    other = cf.kv.namespaces.create(account_id=account, title="sdk-kv-2")
    listed = [n.id for n in cf.kv.namespaces.list(account_id=account, per_page=1)]
    assert sorted(listed) == sorted([kv.id, other.id])
    for index in range(3):
        cf.kv.namespaces.values.update(
            f"key-{index}",
            account_id=account,
            namespace_id=kv.id,
            value=f"value-{index}".encode(),
        )
    value = cf.kv.namespaces.values.get("key-1", account_id=account, namespace_id=kv.id)
    assert value.read() == b"value-1"
    keys = [
        k.name for k in cf.kv.namespaces.keys.list(kv.id, account_id=account, limit=10)
    ]
    assert keys == ["key-0", "key-1", "key-2"]
    cf.kv.namespaces.delete(other.id, account_id=account)
    assert list(
        KVNamespace.objects.filter(account_id=account).values_list("id", flat=True)
    ) == [kv.id]
    assert KVEntry.objects.filter(namespace_id=kv.id).count() == 3

    # D1.
    db = cf.d1.database.create(account_id=account, name="sdk-db")
    cf.d1.database.create(account_id=account, name="sdk-db-2")
    assert sorted(
        d.name for d in cf.d1.database.list(account_id=account, per_page=1)
    ) == [
        "sdk-db",
        "sdk-db-2",
    ]
    cf.d1.database.query(
        db.uuid,
        account_id=account,
        sql="CREATE TABLE t (x); INSERT INTO t VALUES (1), (2)",
    )
    [result] = list(
        cf.d1.database.query(
            db.uuid, account_id=account, sql="SELECT sum(x) AS s FROM t"
        )
    )
    assert result.results == [{"s": 3}]
    assert cf.d1.database.get(db.uuid, account_id=account).num_tables == 1
    cf.d1.database.delete(db.uuid, account_id=account)
    assert list(D1Database.objects.values_list("name", flat=True)) == ["sdk-db-2"]

    # Queues, with HTTP pull.
    queue = cf.queues.create(account_id=account, queue_name="sdk-jobs")
    assert [q.queue_name for q in cf.queues.list(account_id=account)] == ["sdk-jobs"]
    assert cf.queues.get(queue.queue_id, account_id=account).queue_name == "sdk-jobs"
    cf.queues.consumers.create(queue.queue_id, account_id=account, type="http_pull")
    consumers = list(cf.queues.consumers.list(queue.queue_id, account_id=account))
    assert [c.type for c in consumers] == ["http_pull"]
    cf.queues.messages.bulk_push(
        queue.queue_id,
        account_id=account,
        messages=[{"body": "one", "content_type": "text"}],
    )
    pulled = cf.queues.messages.pull(queue.queue_id, account_id=account, batch_size=5)
    [message] = pulled.messages
    assert message.body == "one"
    acked = cf.queues.messages.ack(
        queue.queue_id, account_id=account, acks=[{"lease_id": message.lease_id}]
    )
    assert acked.ack_count == 1

    # Hyperdrive, listed one per page.
    for name in ("sdk-hd", "sdk-hd-2"):
        cf.hyperdrive.configs.create(
            account_id=account,
            name=name,
            origin={
                "host": "127.0.0.1",
                "port": 5432,
                "scheme": "postgres",
                "database": "app",
                "user": "app",
                "password": "pass-word",
            },
        )
    configs = list(cf.hyperdrive.configs.list(account_id=account, per_page=1))
    assert sorted(c.name for c in configs) == ["sdk-hd", "sdk-hd-2"]
    cf.hyperdrive.configs.delete(configs[0].id, account_id=account)
    assert HyperdriveConfig.objects.filter(account_id=account).count() == 1

    # Certificates.
    cert, key = make_pem(tmp_path, "sdk")
    made = cf.mtls_certificates.create(
        account_id=account,
        ca=False,
        certificates=cert.read_text(),
        private_key=key.read_text(),
        name="sdk-cert",
    )
    assert [c.id for c in cf.mtls_certificates.list(account_id=account)] == [made.id]
    cf.mtls_certificates.delete(made.id, account_id=account)
    assert not Certificate.objects.filter(account_id=account).exists()

    # Deleting the Worker and the queue.
    cf.queues.delete(queue.queue_id, account_id=account)
    assert not Queue.objects.filter(account_id=account).exists()
    cf.workers.scripts.delete("sdk-worker", account_id=account, force=True)
    assert not WorkerScript.objects.filter(account_id=account).exists()
