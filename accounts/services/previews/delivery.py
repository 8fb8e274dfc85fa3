"""Queue consumers and cron triggers of live Workers, run for real from
Celery (``accounts.tasks``): beat asks which batches and crons are due, and
each one is a task of its own.

``deliver`` leases a batch of a consumer's queue (the queues service applies
``max_retries`` and the dead-letter queue), hands it to the Worker's
``queue()`` handler through ``send``, and acknowledges or retries each message
as the handler decided (``retry_delay`` unless it said otherwise). Each
account has only so many batches and crons under way at once
(``CLAIMPORTAL_PREVIEW_TRIGGERS_PER_ACCOUNT``), so one that hangs holds that
account's places and no one else's.
"""

import base64
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Min, QuerySet

from accounts.models import CloudAccount, QueueConsumer, QueueMessage, WorkerScript
from accounts.services import queues
from accounts.services.concurrency import account_slot

from . import cron
from .client import invoke_worker, runtime_status

logger = logging.getLogger("claimportal.previews")

DEFAULT_BATCH_SIZE = 10
DEFAULT_WAIT_MS = 5000
# How long a batch stays leased to the Worker before it is offered again.
VISIBILITY_MS = 60_000

Send = Callable[[dict[str, Any]], dict[str, Any] | None]


def _live_scripts(now: datetime) -> QuerySet[WorkerScript]:
    """Deployed scripts of accounts whose previews run."""
    return WorkerScript.objects.filter(
        account__in=CloudAccount.objects.live(now).values("pk"),
        current_version__isnull=False,
    )


def _script_of(consumer: QueueConsumer, now: datetime) -> WorkerScript | None:
    return (
        _live_scripts(now)
        .filter(account_id=consumer.queue.account_id, name=consumer.script_name)
        .first()
    )


def due_consumers(*, now: datetime) -> list[str]:
    """Ids of the Worker consumers with a batch due whose Worker is live."""
    waiting = QueueConsumer.objects.filter(
        type="worker", queue__messages__visible_at__lte=now
    ).distinct()
    live = set(_live_scripts(now).values_list("account_id", "name"))
    return [
        consumer.pk
        for consumer in waiting.select_related("queue")
        if (consumer.queue.account_id, consumer.script_name) in live
        and _batch_due(consumer, now)
    ]


def _trigger_slot(account_id: str):
    return account_slot(
        account_id=account_id,
        purpose="preview-triggers",
        limit=settings.CLAIMPORTAL_PREVIEW_TRIGGERS_PER_ACCOUNT,
        ttl=settings.CLAIMPORTAL_PREVIEW_REQUEST_TIMEOUT_SECONDS + 30,
    )


def deliver_batch(*, consumer_id: str, now: datetime) -> int | None:
    """Deliver one due batch of the consumer to its Worker. Returns how many
    messages were delivered, or None when the account has as many batches and
    crons under way as it may, or the runtime is not answering (the next
    round tries again)."""
    consumer = (
        QueueConsumer.objects.select_related("queue__account")
        .filter(pk=consumer_id, type="worker")
        .first()
    )
    script = _script_of(consumer, now) if consumer is not None else None
    if consumer is None or script is None:
        return 0
    if runtime_status() is None:  # down or restarting: spend no attempt
        return None
    with _trigger_slot(script.account_id) as free:
        if not free:
            return None
        return deliver(
            consumer=consumer,
            now=now,
            send=lambda payload: invoke_worker(
                script_id=script.pk,
                handler="queue",
                payload=payload,
                timeout=settings.CLAIMPORTAL_PREVIEW_REQUEST_TIMEOUT_SECONDS + 5,
            ),
        )


def crons_due(*, minute: datetime) -> list[tuple[int, str]]:
    """(script id, schedule) of every live Worker's cron that fires in
    ``minute``."""
    scripts = _live_scripts(minute).exclude(cron_schedules=[])
    return [
        (script.pk, expression)
        for script in scripts.only("pk", "cron_schedules")
        for expression in due_crons(
            schedules=[
                str(entry.get("cron", "")) if isinstance(entry, dict) else str(entry)
                for entry in script.cron_schedules or []
            ],
            minute=minute,
        )
    ]


def run_cron(*, script_id: int, cron: str, scheduled: datetime) -> str | None:
    """Run the Worker's scheduled() for ``cron`` as of ``scheduled``; its
    outcome ("ok", "exception", "gone" ...), or None when the account has as
    many batches and crons under way as it may."""
    script = _live_scripts(scheduled).filter(pk=script_id).first()
    if script is None:
        return "gone"
    with _trigger_slot(script.account_id) as free:
        if not free:
            return None
        result = invoke_worker(
            script_id=script.pk,
            handler="scheduled",
            query={"cron": cron, "time": str(int(scheduled.timestamp() * 1000))},
            timeout=settings.CLAIMPORTAL_PREVIEW_REQUEST_TIMEOUT_SECONDS + 5,
        )
        return str((result or {}).get("outcome") or "exception")


def _batch_due(consumer: QueueConsumer, now: datetime) -> bool:
    """A full batch waits, or the oldest message waited ``max_wait_time_ms``."""
    batch_size = int(consumer.settings.get("batch_size") or DEFAULT_BATCH_SIZE)
    wait_ms = consumer.settings.get("max_wait_time_ms")
    wait = timedelta(milliseconds=DEFAULT_WAIT_MS if wait_ms is None else int(wait_ms))
    waiting = consumer.queue.messages.filter(visible_at__lte=now).aggregate(
        count=Count("pk"), oldest=Min("visible_at")
    )
    if not waiting["count"]:
        return False
    return waiting["count"] >= batch_size or waiting["oldest"] <= now - wait


def _wire(message: QueueMessage) -> dict[str, Any]:
    body = bytes(message.body)
    text = message.content_type in ("json", "text")
    return {
        "id": message.pk.hex,
        "timestamp": int(message.created_at.timestamp() * 1000),
        "attempts": message.attempts,
        "contentType": message.content_type,
        "body": body.decode("utf-8", "replace")
        if text
        else base64.b64encode(body).decode(),
    }


def deliver(*, consumer: QueueConsumer, now: datetime, send: Send) -> int:
    """Deliver one batch of ``consumer``'s queue if one is due; returns how
    many messages were delivered (acknowledged or not)."""
    if not _batch_due(consumer, now):
        return 0
    queue = consumer.queue
    leases = queues.pull_messages(
        queue=queue,
        now=now,
        batch_size=int(consumer.settings.get("batch_size") or DEFAULT_BATCH_SIZE),
        visibility_timeout_ms=VISIBILITY_MS,
    )
    if not leases:
        return 0
    by_id = {lease.message.pk.hex: lease.lease_id for lease in leases}
    result = send(
        {"queue": queue.name, "messages": [_wire(lease.message) for lease in leases]}
    )
    retry_delay = int(consumer.settings.get("retry_delay") or 0)
    batch = (result or {}).get("retryBatch") or {}
    if not result or result.get("outcome") != "ok" or batch.get("retry"):
        # The handler threw (or asked to retry everything): every message again.
        delay = int(batch.get("delaySeconds") or retry_delay)
        acks, retries = [], [(lease_id, delay) for lease_id in by_id.values()]
    else:
        explicit = set(result.get("explicitAcks") or [])
        asked = {
            r.get("msgId"): int(r.get("delaySeconds") or retry_delay)
            for r in result.get("retryMessages") or []
            if r.get("msgId") not in explicit
        }
        acks = [lease for mid, lease in by_id.items() if mid not in asked]
        retries = [(by_id[mid], delay) for mid, delay in asked.items() if mid in by_id]
    queues.acknowledge(queue=queue, now=now, acks=acks, retries=retries)
    return len(leases)


def due_crons(*, schedules: Iterable[str], minute: datetime) -> list[str]:
    """The schedules among ``schedules`` that fire in ``minute``."""
    return [expression for expression in schedules if cron.is_due(expression, minute)]
