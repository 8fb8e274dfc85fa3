"""Bindings through real workerd: KV, D1 and queue messages land in Django's
stores, Durable Objects keep SQLite files on the runtime's disk, assets are
served with their rules, and the queue consumer and cron handlers run."""

import hashlib
import json

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from accounts.models import AssetBlob, CloudAccount, DurableObjectNamespace, KVEntry
from accounts.services import d1, kv, queues
from preview_runtime.services import delivery
from preview_runtime.services.status import preview_status
from tests import preview_runtime
from tests.preview_runtime import host_of, make_worker

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("previews")]

runtime = preview_runtime.runtime
preview_settings = preview_runtime.preview_settings
_media_root = preview_runtime._media_root

WORKER = """
import greeting from "./greeting.txt";

export class Counter {
  constructor(state) { this.state = state; }
  async fetch() {
    const n = ((await this.state.storage.get("n")) || 0) + 1;
    await this.state.storage.put("n", n);
    this.state.storage.sql.exec("CREATE TABLE IF NOT EXISTS hits (n INTEGER)");
    this.state.storage.sql.exec("INSERT INTO hits VALUES (?)", n);
    return new Response(String(n));
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const q = (name) => url.searchParams.get(name);
    switch (url.pathname) {
      case "/vars":
        return Response.json({greeting, limits: env.LIMITS, secret: env.API_KEY});
      case "/kv/put":
        await env.CACHE.put(q("k"), q("v"), {metadata: {by: "worker"}});
        return new Response("stored");
      case "/kv/get":
        return Response.json(await env.CACHE.getWithMetadata(q("k")));
      case "/kv/list":
        return Response.json(await env.CACHE.list({prefix: q("prefix") || ""}));
      case "/kv/delete":
        await env.CACHE.delete(q("k"));
        return new Response("deleted");
      case "/d1": {
        await env.DB.exec("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, n)");
        const insert = await env.DB.prepare("INSERT INTO t (n) VALUES (?)")
          .bind(q("name")).run();
        const {results} = await env.DB.prepare("SELECT n FROM t ORDER BY id").all();
        return Response.json({results, changes: insert.meta.changes});
      }
      case "/d1/batch":
        // D1 batches are transactions: the failing second statement undoes the first.
        try {
          await env.DB.batch([
            env.DB.prepare("INSERT INTO t (n) VALUES (?)").bind(q("name")),
            env.DB.prepare("INSERT INTO missing_table VALUES (1)"),
          ]);
          return new Response("no error");
        } catch (error) {
          return new Response(error.message, {status: 500});
        }
      case "/d1/error":
        try {
          await env.DB.prepare("SELECT * FROM missing_table").all();
          return new Response("no error");
        } catch (error) {
          return new Response(error.message, {status: 500});
        }
      case "/count":
        return env.COUNTER.get(env.COUNTER.idFromName("main")).fetch(request);
      case "/send":
        await env.JOBS.send({job: q("job")});
        return new Response("sent");
      case "/ai":
        try { await env.AI.run("model", {}); return new Response("ran"); }
        catch (error) { return new Response(error.message, {status: 500}); }
      default:
        return new Response("worker " + url.pathname);
    }
  },
  async queue(batch, env) {
    for (const message of batch.messages) {
      if (message.body.job === "flaky" && message.attempts < 2) {
        message.retry();
        continue;
      }
      await env.CACHE.put("job:" + message.body.job, String(message.attempts));
      message.ack();
    }
  },
  async scheduled(event, env) {
    await env.CACHE.put("cron", event.cron);
  },
};
"""


@pytest.fixture
def account(provision, preview_settings):
    return provision().account


@pytest.fixture
def resources(account, now):
    namespace = kv.create_namespace(account=account, title="cache", now=now)
    database = d1.create_database(account=account, name="full-db", now=now)
    queue = queues.create_queue(account=account, name="jobs", now=now)
    queues.add_consumer(
        queue=queue,
        type="worker",
        script_name="full",
        consumer_settings={"batch_size": 5, "max_wait_time_ms": 0, "max_retries": 3},
        now=now,
    )
    return namespace, database, queue


def deploy_full(account, namespace, database, **extra):
    script = make_worker(
        account,
        "full",
        WORKER,
        modules={"./greeting.txt": ("text/plain", "héllo".encode())},
        bindings=[
            {"name": "LIMITS", "type": "json", "json": {"max": 3}},
            {"name": "API_KEY", "type": "secret_text", "text": "s3cret"},
            {"name": "CACHE", "type": "kv_namespace", "namespace_id": namespace.pk},
            {"name": "DB", "type": "d1", "id": str(database.pk)},
            {"name": "JOBS", "type": "queue", "queue_name": "jobs"},
            {
                "name": "COUNTER",
                "type": "durable_object_namespace",
                "class_name": "Counter",
            },
            {"name": "AI", "type": "ai"},
        ],
        **extra,
    )
    DurableObjectNamespace.objects.get_or_create(
        account=account, script=script, class_name="Counter"
    )
    return script


def test_every_binding_reaches_its_store(runtime, account, resources, client, user):
    namespace, database, _queue = resources
    script = deploy_full(account, namespace, database)
    assert runtime.apply(script)["state"] == "running", runtime.log()
    host = host_of(script)

    assert runtime.get(host, "/vars").json() == {
        "greeting": "héllo",
        "limits": {"max": 3},
        "secret": "s3cret",
    }

    # KV: the Worker's writes are rows in PostgreSQL, visible to the API.
    stored = runtime.get(host, "/kv/put?k=user%2F1&v=ada")
    assert stored.text == "stored", runtime.worker_log(script)
    entry = KVEntry.objects.get(namespace=namespace, key="user/1")
    assert bytes(entry.value) == b"ada"
    assert entry.metadata == {"by": "worker"}
    kv.put_value(namespace=namespace, key="user/2", value=b"bob", now=timezone.now())
    got = runtime.get(host, "/kv/get?k=user%2F2")
    assert got.status == 200, runtime.worker_log(script)
    assert got.json()["value"] == "bob" and got.json()["metadata"] is None
    listed = runtime.get(host, "/kv/list?prefix=user%2F").json()
    assert [k["name"] for k in listed["keys"]] == ["user/1", "user/2"]
    assert listed["keys"][0]["metadata"] == {"by": "worker"}
    assert listed["list_complete"] is True
    runtime.get(host, "/kv/delete?k=user%2F2")
    assert runtime.get(host, "/kv/get?k=user%2F2").json()["value"] is None

    # D1: the Worker's rows are in the database's SQLite file.
    assert runtime.get(host, "/d1?name=first").json() == {
        "results": [{"n": "first"}],
        "changes": 1,
    }
    runtime.get(host, "/d1?name=second")
    [result] = d1.run_queries(
        database=database, queries=[d1.Query(sql="SELECT n FROM t ORDER BY id")]
    )
    assert result.rows == [["first"], ["second"]]
    failed_batch = runtime.get(host, "/d1/batch?name=third")
    assert failed_batch.status == 500 and "no such table" in failed_batch.text
    [result] = d1.run_queries(
        database=database, queries=[d1.Query(sql="SELECT n FROM t ORDER BY id")]
    )
    assert result.rows == [["first"], ["second"]]
    error = runtime.get(host, "/d1/error")
    assert error.status == 500
    assert "D1_ERROR" in error.text and "no such table" in error.text

    # Durable Objects: SQLite on the runtime's disk, one file per object.
    assert [runtime.get(host, "/count").text for _ in range(3)] == ["1", "2", "3"]
    objects = (
        runtime.worker_dir(script)
        / "do"
        / str(script.durable_object_namespaces.get().pk)
    )
    files = {p.name for p in objects.glob("*.sqlite")}
    assert len(files - {"metadata.sqlite"}) == 1  # one object, one file
    # What the claim page shows: running, and the objects' storage counted.
    status = preview_status(account=account)
    assert status.workers["full"] == ("running", "Running", "")
    usage = status.durable_objects[str(script.durable_object_namespaces.get().pk)]
    assert usage.objects == 1 and usage.bytes > 0
    assert status.object_bytes == usage.bytes
    CloudAccount.objects.filter(pk=account.pk).update(
        state=CloudAccount.State.CLAIMED, owner=user, claimed_at=timezone.now()
    )
    client.force_login(user)
    page = client.get(reverse("accounts:account", args=[account.pk])).content.decode()
    assert "Live previews" in page and "Running" in page
    assert "Durable Objects stored by the preview runtime: 1 object," in page

    # A binding type previews do not run fails when called, clearly.
    ai = runtime.get(host, "/ai")
    assert ai.status == 500
    assert 'The AI binding of type "ai" is not available in claimportal previews' in (
        ai.text
    )


def test_queue_messages_reach_the_consumer_with_retries(runtime, account, resources):
    namespace, database, queue = resources
    script = deploy_full(account, namespace, database)
    assert runtime.apply(script)["state"] == "running", runtime.log()
    host = host_of(script)
    for job in ("a", "b", "flaky"):
        assert runtime.get(host, f"/send?job={job}").text == "sent"
    # Stored in PostgreSQL, and delivered from there, as the Celery task does.
    consumer = queue.consumers.get()

    def delivered():
        delivery.deliver_batch(consumer_id=consumer.pk, now=timezone.now())
        return (
            not queue.messages.exists()
            and KVEntry.objects.filter(namespace=namespace, key="job:flaky").exists()
        )

    runtime.wait_for(delivered, timeout=20, what="the queue consumer")
    values = {
        e.key: bytes(e.value).decode()
        for e in KVEntry.objects.filter(namespace=namespace, key__startswith="job:")
    }
    # Acked at once; the flaky one was retried and succeeded on its 2nd attempt.
    assert values == {"job:a": "1", "job:b": "1", "job:flaky": "2"}


def test_cron_runs_the_scheduled_handler(runtime, account, resources):
    namespace, database, _queue = resources
    script = deploy_full(account, namespace, database)
    script.cron_schedules = [{"cron": "*/5 * * * *"}]
    script.save(update_fields=["cron_schedules"])
    runtime.apply(script)
    outcome = delivery.run_cron(
        script_id=script.pk, cron="*/5 * * * *", scheduled=timezone.now()
    )
    assert outcome == "ok"
    cron = KVEntry.objects.get(namespace=namespace, key="cron")
    assert bytes(cron.value) == b"*/5 * * * *"


def test_durable_object_data_survives_a_runtime_restart(runtime, account, resources):
    namespace, database, _queue = resources
    script = deploy_full(account, namespace, database)
    runtime.apply(script)
    host = host_of(script)
    assert runtime.get(host, "/count").text == "1"
    assert runtime.get(host, "/count").text == "2"
    runtime.stop()
    runtime.start()
    runtime.wait_for(
        lambda: runtime.get(host, "/vars").status == 200, what="the restarted Worker"
    )
    assert runtime.get(host, "/count").text == "3"
    # A redeploy keeps the data too.
    deploy_full(account, namespace, database, script=script)
    assert runtime.apply(script)["state"] == "running"
    assert runtime.get(host, "/count").text == "4"


def asset(account, content: bytes, content_type: str) -> dict:
    digest = hashlib.md5(content).hexdigest()  # noqa: S324 - a name, not security
    name = f"accounts/{account.pk}/assets/{digest}"
    default_storage.save(name, ContentFile(content))
    AssetBlob.objects.create(
        account=account,
        hash=digest,
        size=len(content),
        content_type=content_type,
        storage_name=name,
    )
    return {"hash": digest, "size": len(content)}


def test_an_asset_lost_from_storage_fails_its_worker_only(runtime, account):
    manifest = {"/index.html": asset(account, b"<h1>gone</h1>", "text/html")}
    default_storage.delete(AssetBlob.objects.get(account=account).storage_name)
    lost = make_worker(
        account,
        "lost",
        "export default { fetch() { return new Response('worker'); } };",
        assets={"manifest": manifest, "config": {}},
    )
    applied = runtime.apply(lost)
    assert applied["state"] == "failed"
    assert "'/index.html' is missing from storage" in applied["error"]
    fine = make_worker(
        account, "fine", "export default { fetch() { return new Response('ok'); } };"
    )
    assert runtime.apply(fine)["state"] == "running", runtime.log()
    assert runtime.get(host_of(fine), "/").text == "ok"


def test_static_assets_are_served_with_their_rules(runtime, account):
    index = b"<!doctype html><html><body><h1>Home</h1></body></html>"
    about = b"<!doctype html><html><body><h1>About</h1></body></html>"
    css = b"body { color: red }"
    manifest = {
        "/index.html": asset(account, index, "text/html"),
        "/about.html": asset(account, about, "text/html"),
        "/css/site.css": asset(account, css, "text/css"),
    }
    config = {
        "html_handling": "auto-trailing-slash",
        "run_worker_first": ["/api/*"],
        "_headers": "/css/*\n  X-Styled: yes\n",
        "_redirects": "/old /about 301\n",
    }
    script = make_worker(
        account,
        "site",
        """
        export default {
          async fetch(request, env) {
            const url = new URL(request.url);
            if (url.pathname === "/via-binding") return env.ASSETS.fetch(
              new URL("/css/site.css", request.url));
            return new Response("worker " + url.pathname);
          },
        };
        """,
        bindings=[{"name": "ASSETS", "type": "assets"}],
        assets={"manifest": manifest, "config": config},
    )
    assert runtime.apply(script)["state"] == "running", runtime.log()
    host = host_of(script)
    home = runtime.get(host, "/")
    assert home.status == 200
    assert b"<h1>Home</h1>" in home.body
    assert runtime.get(host, "/about").body.count(b"<h1>About</h1>") == 1
    assert runtime.get(host, "/about.html").status == 307  # html_handling
    styled = runtime.get(host, "/css/site.css")
    assert styled.body == css
    assert styled.headers["x-styled"] == "yes"  # _headers
    moved = runtime.get(host, "/old")
    assert moved.status == 301 and moved.headers["location"] == "/about"
    assert runtime.get(host, "/api/x").text == "worker /api/x"  # run_worker_first
    assert runtime.get(host, "/missing").text == "worker /missing"
    assert runtime.get(host, "/via-binding").body == css


def test_values_written_through_the_api_reach_the_worker(runtime, account, resources):
    namespace, database, _queue = resources
    kv.put_value(
        namespace=namespace,
        key="k",
        value=json.dumps({"x": 1}).encode(),
        now=timezone.now(),
        metadata={"m": [1, 2]},
    )
    script = deploy_full(account, namespace, database)
    runtime.apply(script)
    got = runtime.get(host_of(script), "/kv/get?k=k").json()
    assert (got["value"], got["metadata"]) == ('{"x": 1}', {"m": [1, 2]})
