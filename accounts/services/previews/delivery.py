"""Queue consumers and cron triggers of live Workers, run for real.

The runtime calls these about once a second: ``deliver`` leases a batch of a
consumer's queue (the queues service applies ``max_retries`` and the
dead-letter queue), hands it to the Worker's ``queue()`` handler through
``send``, and acknowledges or retries each message as the handler decided.
"""

import base64
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Min

from accounts.models import QueueConsumer, QueueMessage
from accounts.services import queues

from . import cron

logger = logging.getLogger("claimportal.previews")

DEFAULT_BATCH_SIZE = 10
DEFAULT_WAIT_MS = 5000
# How long a batch stays leased to the Worker before it is offered again.
VISIBILITY_MS = 60_000

Send = Callable[[dict[str, Any]], dict[str, Any] | None]


def consumers_of(*, scripts: Iterable[tuple[str, str]]) -> list[QueueConsumer]:
    """The Worker consumers of the given (account id, script name) pairs."""
    wanted = set(scripts)
    if not wanted:
        return []
    rows = QueueConsumer.objects.filter(
        type="worker",
        queue__account_id__in={account for account, _ in wanted},
        script_name__in={name for _, name in wanted},
    ).select_related("queue", "queue__account")
    return [c for c in rows if (c.queue.account_id, c.script_name) in wanted]


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
