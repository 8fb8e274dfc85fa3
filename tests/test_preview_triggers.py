"""Queue batches and crons are Celery tasks, through a real worker and real
workerd: one account's hanging consumer and cron delay no other account's
delivery by more than 2 s, nor skip its cron."""

import signal
import threading
import time
import uuid
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from accounts.models import KVEntry
from accounts.services import kv, queues
from accounts.tasks import dispatch_crons, dispatch_queue_batches
from tests import preview_runtime
from tests.conftest import start_celery_worker, stop_process
from tests.preview_runtime import QUEUE_AND_CRON_WORKER, make_worker

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("previews")]

runtime = preview_runtime.runtime
preview_settings = preview_runtime.preview_settings
_media_root = preview_runtime._media_root

BEAT_SECONDS = 0.5  # how often the test asks for due batches, as beat would

HANGS = """
export default {
  async fetch() { return new Response("hangs"); },
  async queue() { await new Promise((done) => setTimeout(done, 60_000)); },
  async scheduled() { await new Promise((done) => setTimeout(done, 60_000)); },
};
"""


def worker_with_queue(account, name: str, source: str):
    now = timezone.now()
    namespace = kv.create_namespace(account=account, title=f"{name}-kv", now=now)
    queue = queues.create_queue(account=account, name=f"{name}-jobs", now=now)
    queues.add_consumer(
        queue=queue,
        type="worker",
        script_name=name,
        consumer_settings={"batch_size": 1, "max_wait_time_ms": 0},
        now=now,
    )
    script = make_worker(
        account,
        name,
        source,
        bindings=[{"name": "KV", "type": "kv_namespace", "namespace_id": namespace.pk}],
    )
    script.cron_schedules = [{"cron": "* * * * *"}]
    script.save(update_fields=["cron_schedules"])
    return script, queue, namespace


def send(queue, job: str) -> None:
    message = queues.new_message(
        body=f'{{"job": "{job}"}}'.encode(), content_type="json", delay_seconds=None
    )
    queues.send_messages(queue=queue, messages=[message], now=timezone.now())


@pytest.fixture
def celery_queue(preview_settings, runtime):
    """A real worker of three processes (more than one account may hold)."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    worker = start_celery_worker(
        name,
        runtime.media_root,
        concurrency=3,
        CLAIMPORTAL_PREVIEW_STATE_DIR=str(runtime.state_dir),
    )
    try:
        assert dispatch_queue_batches.apply_async(queue=name).get(timeout=90) == 0
        yield name
    finally:
        # A cold shutdown: the hanging handlers' tasks need not be waited for.
        worker.send_signal(signal.SIGQUIT)
        stop_process(worker)


def test_a_hanging_consumer_delays_no_other_account(runtime, provision, celery_queue):
    hang, stuck, _ = worker_with_queue(provision().account, "hangs", HANGS)
    fine, jobs, namespace = worker_with_queue(
        provision().account, "fine", QUEUE_AND_CRON_WORKER
    )
    for script in (hang, fine):
        assert runtime.apply(script)["state"] == "running", runtime.log()
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(BEAT_SECONDS):
            dispatch_queue_batches.apply_async(queue=celery_queue)

    beating = threading.Thread(target=beat)
    beating.start()
    try:
        # The hanging account takes every place it may: a batch and a cron.
        for job in ("a", "b", "c"):
            send(stuck, job)
        minute = datetime.now(UTC).replace(second=0, microsecond=0)
        dispatch_crons.apply_async((minute.isoformat(),), queue=celery_queue)
        time.sleep(2)
        assert stuck.messages.filter(attempts=1).exists()  # leased, in its hands

        began = time.monotonic()
        send(jobs, "first")
        runtime.wait_for(
            lambda: KVEntry.objects.filter(namespace=namespace, key="job:first"),
            timeout=30,
            what="the other account's delivery",
        )
        delivered_after = time.monotonic() - began

        began = time.monotonic()
        fired = dispatch_crons.apply_async((minute.isoformat(),), queue=celery_queue)
        assert fired.get(timeout=30) == 2  # both accounts' crons are due
        runtime.wait_for(
            lambda: KVEntry.objects.filter(namespace=namespace, key="cron"),
            timeout=30,
            what="the other account's cron",
        )
        cron_after = time.monotonic() - began
    finally:
        stop.set()
        beating.join()
    assert delivered_after < BEAT_SECONDS + 2, delivered_after
    assert cron_after < 2, cron_after
    assert not jobs.messages.exists()
