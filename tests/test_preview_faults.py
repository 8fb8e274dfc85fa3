"""What previews do when Workers misbehave, and when their account changes:
isolation per process, the edge's own pages, purge leaving nothing behind."""

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import CloudAccount, WorkerScript
from accounts.services import kv, queues
from accounts.services.purge import purge_account_now
from preview_runtime.services import delivery
from preview_runtime.services.specs import WorkerStartupFailed, check_version_starts
from preview_runtime.services.status import preview_status
from tests import preview_runtime
from tests.cloudapi import AccountClient, error_code, ok
from tests.preview_runtime import QUEUE_AND_CRON_WORKER, host_of, make_worker
from tests.workerupload import MODULE, script_form, upload

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("previews")]

RUNTIME_ENV = {
    "CLAIMPORTAL_PREVIEW_MAX_PER_ACCOUNT": "2",
    "CLAIMPORTAL_PREVIEW_IDLE_SECONDS": "3",
    "CLAIMPORTAL_PREVIEW_REQUEST_TIMEOUT_SECONDS": "3",
}
runtime = preview_runtime.runtime
preview_settings = preview_runtime.preview_settings
_media_root = preview_runtime._media_root

MISCHIEF = """
export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === "/spin") { while (true) {} }
    if (url.pathname === "/bomb") {
      const hoard = [];
      while (true) hoard.push(new Array(1e6).fill(Math.random()));
    }
    if (url.pathname === "/out") {
      try {
        await fetch(url.searchParams.get("to"));
        return new Response("reached it");
      } catch (error) {
        return new Response("blocked: " + error.message, {status: 502});
      }
    }
    if (url.pathname === "/page") {
      return new Response("<html><body><p>mine</p></body></html>",
        {headers: {"content-type": "text/html; charset=utf-8"}});
    }
    return new Response("fine");
  },
};
"""


@pytest.fixture
def account(provision, preview_settings) -> CloudAccount:
    return provision().account


def live(runtime, account, name: str = "mischief", source: str = MISCHIEF):
    script = make_worker(account, name, source)
    assert runtime.apply(script)["state"] == "running", runtime.log()
    return script


def test_an_upload_that_cannot_start_is_a_clear_deploy_error(account, settings):
    broken = make_worker(account, "broken", "export default { fetch( {")
    with pytest.raises(WorkerStartupFailed) as caught:
        check_version_starts(version=broken.current_version)
    assert caught.value.code == 10021
    assert "SyntaxError" in caught.value.message
    assert "stack:" not in caught.value.message  # workerd's noise is left out

    missing = make_worker(
        account, "lost", 'import x from "./nope.js";\nexport default {};'
    )
    with pytest.raises(WorkerStartupFailed) as caught:
        check_version_starts(version=missing.current_version)
    assert "nope.js" in caught.value.message

    spinning = make_worker(account, "spin", "while (true) {}\nexport default {};")
    began = time.monotonic()
    with pytest.raises(WorkerStartupFailed) as caught:
        check_version_starts(version=spinning.current_version)
    assert "CPU time" in caught.value.message
    assert time.monotonic() - began < 15

    fine = make_worker(account, "fine", MISCHIEF)
    assert check_version_starts(version=fine.current_version) > 0


def test_an_endless_loop_gets_504_while_other_workers_answer(runtime, account):
    stuck, other = live(runtime, account), live(runtime, account, "bystander")
    answers = {}

    def spin():
        answers["spin"] = runtime.get(host_of(stuck), "/spin")

    spinner = threading.Thread(target=spin)
    spinner.start()
    time.sleep(0.5)
    began = time.monotonic()
    assert runtime.get(host_of(other)).text == "fine"
    assert time.monotonic() - began < 1  # not delayed by the spinning Worker
    spinner.join()
    assert answers["spin"].status == 504
    assert answers["spin"].headers["x-claimportal-preview"] == "stuck"
    # The runtime killed the spinning process and started a fresh one.
    runtime.wait_for(
        lambda: runtime.get(host_of(stuck)).text == "fine", what="the restart"
    )


def test_a_memory_bomb_gets_502_for_that_worker_only(runtime, account):
    bomb, other = live(runtime, account), live(runtime, account, "bystander")
    pid = runtime.command("GET", "/status")["workers"][str(bomb.pk)]["pid"]
    answer = runtime.get(host_of(bomb), "/bomb")
    assert answer.status == 502
    assert answer.headers["x-claimportal-preview"] == "crashed"
    assert runtime.get(host_of(other)).text == "fine"
    runtime.wait_for(
        lambda: runtime.get(host_of(bomb)).text == "fine", what="the restart"
    )
    assert not Path(f"/proc/{pid}").exists()


def test_outbound_network_is_refused(runtime, account, live_server):
    script = live(runtime, account)
    for target in (live_server.url, "http://example.com/", "http://10.0.0.1/"):
        answer = runtime.get(host_of(script), f"/out?to={target}")
        assert answer.status == 502, answer.text
        assert "Outbound network access is disabled" in answer.text


def test_unclaimed_pages_carry_the_banner_and_claimed_ones_do_not(
    runtime, account, user
):
    script = live(runtime, account)
    page = runtime.get(host_of(script), "/page").text
    assert page.startswith("<html><body><p>mine</p>")
    assert "Unclaimed preview, expires at" in page
    assert account.claim_expires_at.strftime("%Y-%m-%d %H:%M UTC") in page
    assert "report abuse" in page
    assert f'/report/{account.pk}/" style=' in page  # the abuse-report form
    assert "Unclaimed" not in runtime.get(host_of(script), "/").text  # not HTML
    CloudAccount.objects.filter(pk=account.pk).update(
        state=CloudAccount.State.CLAIMED, owner=user, claimed_at=timezone.now()
    )
    runtime.wait_for(
        lambda: "Unclaimed" not in runtime.get(host_of(script), "/page").text,
        what="the banner to go",
    )


def test_suspend_and_expiry_change_the_answer_within_seconds(runtime, account):
    script = live(runtime, account)
    host = host_of(script)
    CloudAccount.objects.filter(pk=account.pk).update(
        state=CloudAccount.State.SUSPENDED,
        state_before_suspension=CloudAccount.State.PENDING,
    )

    def answer_or_none():
        # The Worker's process is stopped as the suspension (or the expiry)
        # lands: a request caught in it is cut, and the visitor's next one
        # gets the page.
        try:
            return runtime.get(host)
        except OSError:
            return None

    suspended = runtime.wait_for(
        lambda: (a := answer_or_none()) is not None and a.status == 410 and a,
        what="suspension",
    )
    assert suspended.headers["x-claimportal-preview"] == "suspended"
    assert "suspended" in suspended.text
    CloudAccount.objects.filter(pk=account.pk).update(state=CloudAccount.State.PENDING)
    runtime.wait_for(lambda: runtime.get(host).text == "fine", what="unsuspension")
    past = timezone.now() - timedelta(minutes=1)
    CloudAccount.objects.filter(pk=account.pk).update(claim_expires_at=past)
    expired = runtime.wait_for(
        lambda: (a := answer_or_none()) is not None and a.status == 410 and a,
        what="expiry",
    )
    assert expired.headers["x-claimportal-preview"] == "expired"
    assert "expired" in expired.text


def test_after_purge_no_process_and_no_file_remains(runtime, account, user):
    script = live(runtime, account)
    pid = runtime.command("GET", "/status")["workers"][str(script.pk)]["pid"]
    account_dir = runtime.state_dir / "accounts" / account.pk
    assert any(account_dir.rglob("*"))
    purge_account_now(account=account, now=timezone.now(), actor=user)
    assert not Path(f"/proc/{pid}").exists()
    assert not account_dir.exists()
    gone = runtime.get(host_of(script))
    assert gone.status == 410
    assert gone.headers["x-claimportal-preview"] == "expired"


def test_the_account_limit_says_so(runtime, account):
    first, second = live(runtime, account, "one"), live(runtime, account, "two")
    third = make_worker(account, "three", MISCHIEF)
    assert runtime.apply(third)["state"] == "limited"
    answer = runtime.get(host_of(third))
    assert answer.status == 503
    assert answer.headers["retry-after"] == "1"
    assert "already has 2 live previews" in answer.text
    assert runtime.get(host_of(first)).text == runtime.get(host_of(second)).text


def test_idle_workers_stop_and_start_again_on_the_next_visit(runtime, account):
    script = live(runtime, account)
    pid = runtime.command("GET", "/status")["workers"][str(script.pk)]["pid"]
    runtime.wait_for(
        lambda: not Path(f"/proc/{pid}").exists(), timeout=20, what="idle stop"
    )
    assert runtime.get(host_of(script)).text == "fine"  # started on demand


def test_a_post_to_an_idle_worker_starts_it_and_is_answered(runtime, account):
    script = live(runtime, account)
    pid = runtime.command("GET", "/status")["workers"][str(script.pk)]["pid"]
    runtime.wait_for(
        lambda: not Path(f"/proc/{pid}").exists(), timeout=20, what="idle stop"
    )
    # Nothing reached the stopped Worker, so the edge may send it after the start.
    answer = runtime.get(host_of(script), method="POST", body=b"form=1")
    assert (answer.status, answer.text) == (200, "fine")


def stopped_while_idle(runtime, script) -> int:
    """Wait until the idle stop ends the Worker's process; its pid."""
    pid = runtime.command("GET", "/status")["workers"][str(script.pk)]["pid"]
    assert pid, runtime.log()
    runtime.wait_for(
        lambda: (
            runtime.command("GET", "/status")["workers"][str(script.pk)]["state"]
            == "stopped"
        ),
        timeout=60,
        what="idle stop",
    )
    assert not Path(f"/proc/{pid}").exists()
    return pid


def test_a_queue_batch_or_cron_starts_a_worker_stopped_while_idle(runtime, account):
    # Nobody visits it, so wake-on-visit never fires: the Celery tasks' invokes
    # must start it themselves, or its batches and crons would wait forever.
    now = timezone.now()
    namespace = kv.create_namespace(account=account, title="triggered-kv", now=now)
    jobs = queues.create_queue(account=account, name="triggered-jobs", now=now)
    consumer = queues.add_consumer(
        queue=jobs,
        type="worker",
        script_name="triggered",
        consumer_settings={"batch_size": 1, "max_wait_time_ms": 0},
        now=now,
    )
    binding = {"name": "KV", "type": "kv_namespace", "namespace_id": namespace.pk}
    script = make_worker(
        account, "triggered", QUEUE_AND_CRON_WORKER, bindings=[binding]
    )
    script.cron_schedules = [{"cron": "*/5 * * * *"}]
    script.save(update_fields=["cron_schedules"])
    assert runtime.apply(script)["state"] == "running", runtime.log()

    first = stopped_while_idle(runtime, script)
    outcome = delivery.run_cron(
        script_id=script.pk, cron="*/5 * * * *", scheduled=timezone.now()
    )
    assert outcome == "ok", runtime.log()
    assert bytes(namespace.entries.get(key="cron").value) == b"*/5 * * * *"
    worker = runtime.command("GET", "/status")["workers"][str(script.pk)]
    assert worker["state"] == "running" and worker["pid"] != first
    assert Path(f"/proc/{worker['pid']}").exists()

    stopped_while_idle(runtime, script)
    message = queues.new_message(
        body=b'{"job": "first"}', content_type="json", delay_seconds=None
    )
    queues.send_messages(queue=jobs, messages=[message], now=timezone.now())
    assert delivery.deliver_batch(consumer_id=consumer.pk, now=timezone.now()) == 1
    assert bytes(namespace.entries.get(key="job:first").value) == b"done"
    assert not jobs.messages.exists()  # acknowledged, so gone
    assert runtime.command("GET", "/status")["workers"][str(script.pk)]["pid"]


def test_the_api_refuses_an_upload_that_cannot_start_and_keeps_nothing(
    client, provision, preview_settings
):
    api = AccountClient(client, provision())
    bad = script_form(
        {"main_module": "index.js"},
        {"index.js": (MODULE, b"export default { fetch() { return new Resp")},
    )
    answer = upload(api, "workers/scripts/bad", bad)
    assert error_code(answer) == 10021
    assert "SyntaxError" in answer.json()["errors"][0]["message"]
    assert not WorkerScript.objects.filter(account=api.account).exists()

    good = ok(
        upload(api, "workers/scripts/good", script_form({"main_module": "index.js"}))
    )
    assert good["startup_time_ms"] > 0
    version = WorkerScript.objects.get(account=api.account).current_version
    assert version.startup_time_ms == good["startup_time_ms"]


def test_a_worker_that_fails_to_start_gets_502_and_its_error_on_the_status(
    runtime, account, client, django_user_model
):
    # Stored without the deploy check (as an older upload might be).
    script = make_worker(account, "broken", "export default { fetch( {")
    applied = runtime.apply(script)
    assert applied["state"] == "failed"
    assert "SyntaxError" in applied["error"]
    answer = runtime.get(host_of(script), headers={"Accept": "text/html"})
    assert answer.status == 502
    assert answer.headers["x-claimportal-preview"] == "failed"
    assert "This Worker failed to start." in answer.text
    assert "SyntaxError" not in answer.text  # details are for the owner only
    state, label, error = preview_status(account=account).workers["broken"]
    assert (state, label) == ("failed", "Failed to start")
    assert "SyntaxError" in error
    # The moderators see it on the account's admin page.
    client.force_login(
        django_user_model.objects.create_superuser(
            username="grace", email="grace@example.com", password="x"
        )
    )
    page = client.get(reverse("admin:accounts_cloudaccount_change", args=[account.pk]))
    assert "failed: " in page.text and "SyntaxError" in page.text
