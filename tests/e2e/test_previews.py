"""The real wrangler deploys a Worker with every binding previews run; then
its preview host answers with the Worker's own responses, and the data it
writes is what the API and wrangler see."""

import json
import re
import textwrap
import threading
import time
import tomllib
from pathlib import Path

import pytest
from django.utils import timezone

from accounts.models import CloudAccount, KVEntry, WorkerScript
from preview_runtime.services import delivery
from tests import preview_runtime

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("previews-e2e")]

runtime = preview_runtime.runtime
preview_settings = preview_runtime.preview_settings
_media_root = preview_runtime._media_root

T = "--temporary"

WORKER = """
import { DurableObject } from "cloudflare:workers";

export class Counter extends DurableObject {
  async fetch() {
    const n = ((await this.ctx.storage.get("n")) ?? 0) + 1;
    await this.ctx.storage.put("n", n);
    return new Response(String(n));
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const q = (name) => url.searchParams.get(name);
    switch (url.pathname) {
      case "/api/hello":
        return Response.json({ greeting: env.GREETING, release: env.RELEASE });
      case "/api/kv":
        await env.CACHE.put(q("k"), q("v"));
        return new Response("stored");
      case "/api/d1":
        await env.DB.prepare("CREATE TABLE IF NOT EXISTS notes (body TEXT)").run();
        await env.DB.prepare("INSERT INTO notes VALUES (?)").bind(q("body")).run();
        return new Response("noted");
      case "/api/count":
        return env.COUNTER.get(env.COUNTER.idFromName("one")).fetch(request);
      case "/api/send":
        await env.JOBS.send({ job: q("job") });
        return new Response("sent");
      default:
        return env.ASSETS.fetch(request);
    }
  },
  async queue(batch, env) {
    for (const message of batch.messages) {
      await env.CACHE.put("job:" + message.body.job, "attempt " + message.attempts);
    }
  },
  async scheduled(event, env) {
    await env.CACHE.put("cron", event.cron);
  },
};
"""


def write_project(root: Path, *, release: str, source: str = WORKER) -> Path:
    config = {
        "name": "live",
        "main": "src/index.js",
        "compatibility_date": "2026-06-01",
        "kv_namespaces": [{"binding": "CACHE"}],
        "d1_databases": [{"binding": "DB", "database_name": "live-db"}],
        "durable_objects": {"bindings": [{"name": "COUNTER", "class_name": "Counter"}]},
        "migrations": [{"tag": "v1", "new_sqlite_classes": ["Counter"]}],
        "queues": {
            "producers": [{"binding": "JOBS", "queue": "live-jobs"}],
            "consumers": [{"queue": "live-jobs", "max_batch_size": 5}],
        },
        "vars": {"GREETING": "hi", "RELEASE": release},
        "triggers": {"crons": ["*/5 * * * *"]},
        "assets": {
            "directory": "./public",
            "binding": "ASSETS",
            "html_handling": "auto-trailing-slash",
            "run_worker_first": ["/api/*"],
        },
    }
    files = {
        "wrangler.json": json.dumps(config, indent=2),
        "src/index.js": source,
        "public/index.html": "<!doctype html><html><body><h1>Live</h1></body></html>",
        "public/about.html": "<!doctype html><html><body><h1>About</h1></body></html>",
        "public/_headers": "/about\n  X-Page: about\n",
        "public/_redirects": "/old /about 301\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    return root


def test_a_deployed_worker_runs_for_real_on_its_preview_host(
    wrangler, runtime, preview_settings, tmp_path
):
    project = write_project(tmp_path / "live", release="1")
    first = wrangler("deploy", T, cwd=project, timeout=240)
    assert first.returncode == 0, first.output
    cached = tomllib.loads(wrangler.cache_file.read_text())
    account = CloudAccount.objects.get(pk=cached["account"]["id"])
    host = f"live.{account.subdomain}.preview.localhost"
    assert host in first.stdout  # wrangler prints the preview host
    assert re.search(r"Worker Startup Time: \d+ ms", first.output)
    script = WorkerScript.objects.get(account=account, name="live")

    assert runtime.get(host, "/api/hello").json() == {"greeting": "hi", "release": "1"}

    # KV: written by the Worker, in PostgreSQL, read back by wrangler.
    assert runtime.get(host, "/api/kv?k=note&v=written").text == "stored"
    assert KVEntry.objects.filter(namespace__account=account, key="note").exists()
    got = wrangler(
        "kv", "key", "get", "note", "--binding", "CACHE", "--remote", T, cwd=project
    )
    assert got.returncode == 0 and got.stdout.strip() == "written", got.output

    # D1: rows the Worker wrote, seen by `wrangler d1 execute --remote`.
    assert runtime.get(host, "/api/d1?body=from-the-worker").text == "noted"
    query = wrangler(
        "d1",
        "execute",
        "live-db",
        "--remote",
        T,
        "--json",
        "--command",
        "SELECT body FROM notes",
        cwd=project,
    )
    assert query.returncode == 0, query.output
    assert json.loads(query.stdout)[0]["results"] == [{"body": "from-the-worker"}]

    # Static assets with their rules; the unclaimed banner on HTML pages.
    home = runtime.get(host, "/")
    assert "<h1>Live</h1>" in home.text and "Unclaimed preview" in home.text
    assert runtime.get(host, "/about").headers["x-page"] == "about"
    assert runtime.get(host, "/old").headers["location"] == "/about"

    # The queue consumer gets the message; cron runs scheduled() (what the
    # Celery tasks do, called here in turn).
    assert runtime.get(host, "/api/send?job=welcome").text == "sent"

    def delivered() -> bool:
        for consumer_id in delivery.due_consumers(now=timezone.now()):
            delivery.deliver_batch(consumer_id=consumer_id, now=timezone.now())
        return KVEntry.objects.filter(
            namespace__account=account, key="job:welcome"
        ).exists()

    runtime.wait_for(delivered, timeout=30, what="the queue consumer")
    outcome = delivery.run_cron(
        script_id=script.pk, cron="*/5 * * * *", scheduled=timezone.now()
    )
    assert outcome == "ok"
    cron = KVEntry.objects.get(namespace__account=account, key="cron")
    assert bytes(cron.value) == b"*/5 * * * *"

    # The Durable Object's count survives a restart of the whole runtime.
    assert [runtime.get(host, "/api/count").text for _ in range(2)] == ["1", "2"]
    runtime.stop()
    runtime.start()
    runtime.wait_for(
        lambda: runtime.get(host, "/api/count").text == "3", what="the DO after restart"
    )

    # A redeploy swaps versions while visitors keep getting answers.
    failures, stop = [], threading.Event()

    def visitor():
        while not stop.is_set():
            try:
                answer = runtime.get(host, "/api/hello", timeout=20)
                if answer.status != 200:
                    failures.append(answer.status)
            except OSError as error:
                failures.append(repr(error))

    visitors = [threading.Thread(target=visitor) for _ in range(3)]
    for thread in visitors:
        thread.start()
    try:
        write_project(project, release="2")
        second = wrangler("deploy", T, cwd=project, timeout=240)
        assert second.returncode == 0, second.output
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in visitors:
            thread.join()
    assert failures == []
    # A Worker with Durable Objects swaps by stopping the old process first, and
    # that one drains its requests (up to 5 s) while the visitors keep it busy;
    # on a loaded machine the new one then takes a while to start.
    deadline = time.monotonic() + 20
    while '"release":"2"' not in (answer := runtime.get(host, "/api/hello").text):
        assert time.monotonic() < deadline, answer[:300]
        time.sleep(0.1)
    assert runtime.get(host, "/api/count").text == "4"  # DO data kept

    # An upload that fails at startup is refused with workerd's message.
    write_project(
        project, release="3", source="throw new Error('boom at startup');\n" + WORKER
    )
    broken = wrangler("deploy", T, cwd=project, timeout=240)
    assert broken.returncode != 0
    assert "boom at startup" in broken.output
    assert "10021" in broken.output
    assert runtime.get(host, "/api/hello").json()["release"] == "2"
