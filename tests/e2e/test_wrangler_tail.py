"""The real ``wrangler tail --temporary`` streams a Worker's events from the
preview runtime: its console lines, exceptions, requests, cron and queue
runs, through wrangler's filters, to several tails at once; the Worker's
secrets never reach them."""

import json
import subprocess
import textwrap
import time
import tomllib
from pathlib import Path

import pytest
from django.utils import timezone

from accounts.models import (
    CloudAccount,
    QueueConsumer,
    WorkerEvent,
    WorkerScript,
    WorkerTail,
)
from preview_runtime.services import delivery
from tests import preview_runtime
from tests.tail_server import JsonStream, tail_server, tail_settings

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("previews-e2e")]

runtime = preview_runtime.runtime
preview_settings = preview_runtime.preview_settings
_media_root = preview_runtime._media_root
__all__ = ["tail_server", "tail_settings"]  # fixtures this module uses

T = "--temporary"
SECRET = "s3cr3t-value-that-must-not-show"

WORKER = """
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/boom") {
      console.error("about to fail with", env.API_KEY);
      throw new Error("kaboom " + env.API_KEY);
    }
    if (url.pathname === "/send") {
      await env.JOBS.send({ n: 1 });
      return new Response("sent");
    }
    console.log("hello from", url.pathname, { n: 1 });
    console.warn("careful: <b>&amp;</b>");
    console.info("the key is " + env.API_KEY);
    return new Response("ok", { status: url.pathname === "/missing" ? 404 : 200 });
  },
  async scheduled(event) {
    console.log("cron ran", event.cron);
  },
  async queue(batch) {
    console.log("batch of", batch.messages.length);
  },
};
"""


def write_project(root: Path) -> Path:
    config = {
        "name": "tailed",
        "main": "src/index.js",
        "compatibility_date": "2026-06-01",
        "queues": {
            "producers": [{"binding": "JOBS", "queue": "tailed-jobs"}],
            "consumers": [{"queue": "tailed-jobs", "max_batch_size": 5}],
        },
        "triggers": {"crons": ["*/5 * * * *"]},
    }
    (root / "src").mkdir(parents=True)
    (root / "wrangler.json").write_text(json.dumps(config))
    (root / "src" / "index.js").write_text(textwrap.dedent(WORKER))
    return root


def start_tail(wrangler, *args: str) -> tuple[subprocess.Popen, JsonStream]:
    process = subprocess.Popen(
        [
            str(wrangler.node),
            str(wrangler.script),
            "tail",
            "tailed",
            T,
            "--format",
            "json",
            *args,
        ],
        cwd=wrangler.home,
        env=wrangler.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    return process, JsonStream(process)


def stop_tail(process: subprocess.Popen) -> None:
    process.terminate()  # wrangler deletes its tail on SIGTERM
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def request_path(item) -> str:
    request = (item.get("event") or {}).get("request") or {}
    return request.get("url", "").split("preview.localhost", 1)[-1]


def wait_for_tails(script: WorkerScript, count: int, *streams: JsonStream) -> None:
    deadline = time.monotonic() + 60
    while WorkerTail.objects.filter(script=script).count() < count:
        assert time.monotonic() < deadline, [s.raw for s in streams]
        time.sleep(0.1)
    time.sleep(1.5)  # the WebSockets open after the tails are created


def test_wrangler_tail_streams_events_through_filters_to_two_tails(
    wrangler, runtime, preview_settings, tail_settings, tmp_path
):
    project = write_project(tmp_path / "tailed")
    deployed = wrangler("deploy", T, cwd=project, timeout=240)
    assert deployed.returncode == 0, deployed.output
    put = wrangler("secret", "put", "API_KEY", T, cwd=project, stdin=SECRET)
    assert put.returncode == 0, put.output
    account = CloudAccount.objects.get(
        pk=tomllib.loads(wrangler.cache_file.read_text())["account"]["id"]
    )
    script = WorkerScript.objects.get(account=account, name="tailed")
    host = preview_runtime.host_of(script)
    runtime.wait_for(
        lambda: runtime.get(host, "/warm").status == 200, what="the new version"
    )

    everything, all_events = start_tail(wrangler)
    errors_only, error_events = start_tail(
        wrangler, "--status", "error", "--method", "GET"
    )
    try:
        wait_for_tails(script, 2, all_events, error_events)
        runtime.get(host, "/hello", headers={"X-Trace": "yes please"})
        assert runtime.get(host, "/boom").status == 500
        runtime.get(host, "/missing", method="POST")

        hello = all_events.wait_for(lambda i: request_path(i) == "/hello")
        assert hello["outcome"] == "ok"
        assert hello["scriptName"] == "tailed"
        assert hello["event"]["request"]["method"] == "GET"
        assert hello["event"]["request"]["headers"]["x-trace"] == "yes please"
        assert hello["event"]["response"]["status"] == 200
        levels = [(log["level"], log["message"]) for log in hello["logs"]]
        assert ("log", ["hello from", "/hello", {"n": 1}]) in levels
        assert ("warn", ["careful: <b>&amp;</b>"]) in levels
        assert ("info", ["the key is [redacted]"]) in levels

        boom = all_events.wait_for(lambda i: request_path(i) == "/boom")
        assert boom["outcome"] == "exception"
        assert boom["exceptions"][0]["name"] == "Error"
        assert boom["exceptions"][0]["message"] == "kaboom [redacted]"
        assert boom["logs"][0]["level"] == "error"

        post = all_events.wait_for(lambda i: request_path(i) == "/missing")
        assert post["event"]["request"]["method"] == "POST"
        assert post["event"]["response"]["status"] == 404

        # The filtered tail saw the failed GET, and nothing else.
        assert request_path(error_events.wait_for(lambda i: True)) == "/boom"

        # What the Celery tasks run: a cron firing and a due batch's delivery.
        fired = delivery.run_cron(
            script_id=script.pk, cron="*/5 * * * *", scheduled=timezone.now()
        )
        assert fired == "ok", runtime.log()
        cron = all_events.wait_for(lambda i: "cron" in (i.get("event") or {}))
        assert cron["event"]["cron"] == "*/5 * * * *"
        assert cron["logs"][0]["message"] == ["cron ran", "*/5 * * * *"]

        assert runtime.get(host, "/send").text == "sent"
        consumer = QueueConsumer.objects.get(queue__account=account, type="worker")
        deadline = time.monotonic() + 30  # due once it waited max_wait_time_ms
        while not delivery.deliver_batch(consumer_id=consumer.pk, now=timezone.now()):
            assert time.monotonic() < deadline, all_events.raw
            time.sleep(0.5)
        batch = all_events.wait_for(lambda i: "queue" in (i.get("event") or {}))
        assert batch["event"] == {"queue": "tailed-jobs", "batchSize": 1}

        time.sleep(1)  # anything late would have arrived by now
        assert all(request_path(i) == "/boom" for i in error_events.items), (
            error_events.raw
        )
        assert SECRET not in all_events.raw + error_events.raw
    finally:
        stop_tail(everything)
        stop_tail(errors_only)
    # wrangler deleted its tails as it stopped; the events stay for the pages,
    # with the secret nowhere in them.
    assert not WorkerTail.objects.filter(script=script).exists()
    stored = json.dumps([e.data for e in WorkerEvent.objects.filter(script=script)])
    assert "kaboom [redacted]" in stored
    assert SECRET not in stored


def test_wrangler_tail_search_header_and_sampling_filters(
    wrangler, runtime, preview_settings, tail_settings, tmp_path
):
    project = write_project(tmp_path / "tailed")
    deployed = wrangler("deploy", T, cwd=project, timeout=240)
    assert deployed.returncode == 0, deployed.output
    account = CloudAccount.objects.get(
        pk=tomllib.loads(wrangler.cache_file.read_text())["account"]["id"]
    )
    script = WorkerScript.objects.get(account=account, name="tailed")
    host = preview_runtime.host_of(script)
    runtime.wait_for(lambda: runtime.get(host, "/").status == 200, what="the Worker")

    searching, found = start_tail(wrangler, "--search", "/needle")
    by_header, with_header = start_tail(wrangler, "--header", "X-Pick: yes")
    # The edge sets CF-Connecting-IP from the connection: a client that claims
    # another address in it is still seen from its own.
    by_ip, from_ip = start_tail(wrangler, "--ip", "127.0.0.2")
    try:
        wait_for_tails(script, 3, found, with_header, from_ip)
        runtime.get(host, "/hay", headers={"CF-Connecting-IP": "127.0.0.2"})
        runtime.get(host, "/needle", source="127.0.0.2")
        runtime.get(host, "/picked", headers={"X-Pick": "yes, please"})
        runtime.get(host, "/not-picked", headers={"X-Pick": "no"})
        assert request_path(found.wait_for(lambda i: True)) == "/needle"
        assert request_path(with_header.wait_for(lambda i: True)) == "/picked"
        assert request_path(from_ip.wait_for(lambda i: True)) == "/needle"
        time.sleep(1.5)
        assert [request_path(i) for i in found.items] == ["/needle"]
        assert [request_path(i) for i in with_header.items] == ["/picked"]
        assert [request_path(i) for i in from_ip.items] == ["/needle"]
    finally:
        for process in (searching, by_header, by_ip):
            stop_tail(process)

    # wrangler refuses a sampling rate outside (0, 1) itself; within it, our
    # server samples: 0.5 of 40 requests shows some, never all.
    sampled, some = start_tail(wrangler, "--sampling-rate", "0.5")
    try:
        wait_for_tails(script, 1, some)
        for n in range(40):
            runtime.get(host, f"/s{n}")
        time.sleep(2)
        shown = [p for p in map(request_path, some.items) if p.startswith("/s")]
        assert 0 < len(shown) < 40, some.raw
    finally:
        stop_tail(sampled)
