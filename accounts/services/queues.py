"""Queues: queues of an account, their consumer, and the messages in them.

Message functions (``send_messages``, ``pull_messages``, ``acknowledge``,
``queue_metrics``) are shared by the client/v4 API (HTTP pull consumers) and the
preview runtime (producer bindings and the delivery loop of Worker consumers).
"""

import base64
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Min, Q, QuerySet, Sum
from django.db.models.functions import Length

from accounts.exceptions import Conflict, DomainError, InvalidInput, NotFound
from accounts.models import (
    CloudAccount,
    Queue,
    QueueConsumer,
    QueueMessage,
    WorkerScript,
)
from accounts.services.locking import lock_live_account
from accounts.services.validation import clean_text, is_hex_id, whole_number

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
# Cloudflare's bounds, as wrangler also checks them.
QUEUE_SETTINGS = {
    "delivery_delay": (0, 86_400),
    "message_retention_period": (60, 1_209_600),
}
CONSUMER_SETTINGS = {
    "batch_size": (1, 100),
    "max_retries": (0, 100),
    "max_wait_time_ms": (0, 60_000),
    "max_concurrency": (1, 250),
    "retry_delay": (0, 43_200),
    "visibility_timeout_ms": (0, 43_200_000),
}
CONSUMER_TYPES = {"worker", "http_pull"}
CONTENT_TYPES = {"json", "text", "bytes", "v8"}
DEFAULT_RETENTION_SECONDS = 4 * 24 * 3600
DEFAULT_MAX_RETRIES = 3
MAX_BATCH_MESSAGES = 100
MAX_BATCH_BYTES = 256 * 1024


class QueueNotFound(NotFound):
    code = 11000
    message = "Queue not found."


class ConsumerNotFound(NotFound):
    code = 11001
    message = "Consumer not found."


class TooManyQueues(DomainError):
    code = 11002
    message = "This account has as many queues as it may have."


class QueueFull(DomainError):
    code = 11003
    status = 429
    message = "The queue holds as many messages as it may; consume some first."


# --- Queues ----------------------------------------------------------------------


def list_queues(
    *, account: CloudAccount, names: list[str] | None = None
) -> QuerySet[Queue]:
    rows = account.queues.prefetch_related("consumers").order_by("created_at", "name")
    if not names:
        return rows
    return rows.filter(name__in=names)


def get_queue(*, account: CloudAccount, queue_id: str) -> Queue:
    queue = _queues(account, queue_id).first()
    if queue is None:
        raise QueueNotFound()
    return queue


def _queues(account: CloudAccount, queue_id: str) -> QuerySet[Queue]:
    if not is_hex_id(queue_id):
        return account.queues.none()
    return account.queues.filter(pk=queue_id)


def producers_by_queue(*, account: CloudAccount) -> dict[str, list[str]]:
    """Queue name -> names of the Workers whose current version sends to it."""
    found: dict[str, list[str]] = {}
    scripts = WorkerScript.objects.filter(
        account=account, current_version__isnull=False
    ).values_list("name", "current_version__bindings")
    for script, bindings in scripts:
        for binding in bindings or []:
            if isinstance(binding, dict) and binding.get("type") == "queue":
                found.setdefault(str(binding.get("queue_name")), []).append(script)
    return found


def _check_name(name: Any) -> str:
    name = clean_text(name, field="queue_name", max_length=63)
    if not NAME_PATTERN.match(name):
        raise InvalidInput(
            "A queue name is 1 to 63 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit."
        )
    return name


def create_queue(
    *,
    account: CloudAccount,
    name: str,
    now: datetime,
    queue_settings: dict[str, Any] | None = None,
) -> Queue:
    """``queue_settings`` are within QUEUE_SETTINGS' bounds (the API checks
    them). Raises InvalidInput (name), Conflict (taken), TooManyQueues."""
    name = _check_name(name)
    checked = queue_settings or {}
    try:
        with transaction.atomic():
            lock_live_account(account_id=account.pk, now=now)
            if account.queues.count() >= settings.CLAIMPORTAL_QUEUES_MAX:
                raise TooManyQueues(
                    f"An account may have {settings.CLAIMPORTAL_QUEUES_MAX} queues; "
                    "delete one first."
                )
            return Queue.objects.create(
                account=account,
                name=name,
                settings=checked,
                created_at=now,
                modified_at=now,
            )
    except IntegrityError as exc:
        raise Conflict(f"A queue named '{name}' already exists.") from exc


@transaction.atomic
def update_queue(
    *,
    account: CloudAccount,
    queue_id: str,
    now: datetime,
    name: str | None = None,
    queue_settings: dict[str, Any] | None = None,
    replace: bool = False,
) -> Queue:
    """Change a queue's settings (PATCH merges, PUT ``replace``s). Queues keep
    their name: producers find them by it. Raises QueueNotFound, InvalidInput."""
    lock_live_account(account_id=account.pk, now=now)
    queue = _queues(account, queue_id).select_for_update().first()
    if queue is None:
        raise QueueNotFound()
    if name is not None and name != queue.name:
        raise InvalidInput("A queue cannot be renamed; create a new one instead.")
    checked = queue_settings or {}
    queue.settings = checked if replace else {**queue.settings, **checked}
    queue.modified_at = now
    queue.save(update_fields=["settings", "modified_at"])
    return queue


def delete_queue(*, account: CloudAccount, queue_id: str) -> None:
    with transaction.atomic():
        lock_live_account(account_id=account.pk)
        deleted, _ = _queues(account, queue_id).delete()
    if not deleted:
        raise QueueNotFound()


# --- Consumers ---------------------------------------------------------------------


def get_consumer(*, queue: Queue, consumer_id: str) -> QueueConsumer:
    consumer = (
        queue.consumers.filter(pk=consumer_id).first()
        if is_hex_id(consumer_id)
        else None
    )
    if consumer is None:
        raise ConsumerNotFound()
    return consumer


def _consumer_fields(
    *,
    type: str,
    script_name: str,
    dead_letter_queue: str,
    consumer_settings: dict[str, Any],
) -> dict[str, Any]:
    if type == "worker" and not script_name:
        raise InvalidInput("A Worker consumer needs 'script_name'.")
    return {
        "type": type,
        "script_name": script_name if type == "worker" else "",
        "dead_letter_queue": _check_name(dead_letter_queue)
        if dead_letter_queue
        else "",
        "settings": consumer_settings,
    }


@transaction.atomic
def add_consumer(
    *,
    queue: Queue,
    now: datetime,
    type: str = "worker",
    script_name: str = "",
    dead_letter_queue: str = "",
    consumer_settings: dict[str, Any] | None = None,
) -> QueueConsumer:
    """Attach the queue's consumer (``type`` worker or http_pull; settings
    within CONSUMER_SETTINGS' bounds). A queue has one consumer, as on
    Cloudflare; adding the same Worker again updates it. Raises InvalidInput,
    Conflict."""
    fields = _consumer_fields(
        type=type,
        script_name=script_name,
        dead_letter_queue=dead_letter_queue,
        consumer_settings=consumer_settings or {},
    )
    lock_live_account(account_id=queue.account_id, now=now)  # one at a time
    current = queue.consumers.first()
    if current is not None:
        if current.type == fields["type"] == "worker" and (
            current.script_name == fields["script_name"]
        ):
            return _apply(current, fields)
        described = current.script_name or "an HTTP pull consumer"
        raise Conflict(
            f"Queue '{queue.name}' already has a consumer ({described}); remove it "
            "first (wrangler queues consumer remove)."
        )
    return QueueConsumer.objects.create(queue=queue, created_at=now, **fields)


def update_consumer(
    *,
    queue: Queue,
    consumer_id: str,
    type: str = "worker",
    script_name: str = "",
    dead_letter_queue: str = "",
    consumer_settings: dict[str, Any] | None = None,
) -> QueueConsumer:
    fields = _consumer_fields(
        type=type,
        script_name=script_name,
        dead_letter_queue=dead_letter_queue,
        consumer_settings=consumer_settings or {},
    )
    with transaction.atomic():
        lock_live_account(account_id=queue.account_id)
        return _apply(get_consumer(queue=queue, consumer_id=consumer_id), fields)


def _apply(consumer: QueueConsumer, fields: dict[str, Any]) -> QueueConsumer:
    for name, value in fields.items():
        setattr(consumer, name, value)
    consumer.save(update_fields=list(fields))
    return consumer


def delete_consumer(*, queue: Queue, consumer_id: str) -> None:
    with transaction.atomic():
        lock_live_account(account_id=queue.account_id)
        deleted = (
            queue.consumers.filter(pk=consumer_id).delete()[0]
            if is_hex_id(consumer_id)
            else 0
        )
    if not deleted:
        raise ConsumerNotFound()


# --- Messages ------------------------------------------------------------------------


@dataclass(frozen=True)
class OutgoingMessage:
    """A checked message: its stored bytes, content type and delay."""

    body: bytes
    content_type: str
    delay_seconds: int = 0


def encode_message(
    *, body: Any, content_type: str = "json", delay_seconds: Any = None
) -> OutgoingMessage:
    """A REST message (``{"body", "content_type", "delay_seconds"}``) as stored
    bytes: JSON as its text, text as UTF-8, bytes and v8 from base64."""
    if content_type not in CONTENT_TYPES:
        raise InvalidInput("'content_type' is one of json, text, bytes or v8.")
    if content_type == "json":
        data = json.dumps(body, separators=(",", ":")).encode()
    elif content_type == "text":
        if not isinstance(body, str):
            raise InvalidInput("A text message body must be a string.")
        data = body.encode()
    else:
        try:
            data = base64.b64decode(str(body), validate=True)
        except ValueError as exc:
            raise InvalidInput(
                f"A {content_type} message body must be base64."
            ) from exc
    return new_message(
        body=data, content_type=content_type, delay_seconds=delay_seconds
    )


def new_message(
    *, body: bytes, content_type: str = "json", delay_seconds: Any = None
) -> OutgoingMessage:
    """A message from raw bytes (as the producer binding sends them)."""
    if content_type not in CONTENT_TYPES:
        raise InvalidInput("A message's format is one of json, text, bytes or v8.")
    limit = settings.CLAIMPORTAL_QUEUE_MAX_MESSAGE_BYTES
    if len(body) > limit:
        raise InvalidInput(
            f"A message may be at most {limit} bytes; this one is {len(body)}."
        )
    delay = 0
    if delay_seconds is not None:
        low, high = QUEUE_SETTINGS["delivery_delay"]
        delay = whole_number(
            delay_seconds, field="delay_seconds", minimum=low, maximum=high
        )
    return OutgoingMessage(body=body, content_type=content_type, delay_seconds=delay)


def send_messages(
    *, queue: Queue, messages: list[OutgoingMessage], now: datetime
) -> list[QueueMessage]:
    """Enqueue messages, all or none; a message without a delay of its own waits
    the queue's ``delivery_delay``. Raises InvalidInput (batch too big), QueueFull,
    QueueNotFound (deleted meanwhile)."""
    if not messages:
        return []
    if len(messages) > MAX_BATCH_MESSAGES:
        raise InvalidInput(f"A batch holds at most {MAX_BATCH_MESSAGES} messages.")
    if sum(len(m.body) for m in messages) > MAX_BATCH_BYTES:
        raise InvalidInput(f"A batch holds at most {MAX_BATCH_BYTES} bytes.")
    default_delay = int(queue.settings.get("delivery_delay") or 0)
    rows = [
        QueueMessage(
            queue=queue,
            body=m.body,
            content_type=m.content_type,
            created_at=now,
            visible_at=now + timedelta(seconds=m.delay_seconds or default_delay),
        )
        for m in messages
    ]
    try:
        with transaction.atomic():
            lock_live_account(account_id=queue.account_id, now=now)
            # The queue row lock makes the backlog check exact under concurrency.
            if not Queue.objects.select_for_update().filter(pk=queue.pk).exists():
                raise QueueNotFound()
            backlog = queue.messages.count()
            if backlog + len(rows) > settings.CLAIMPORTAL_QUEUE_MAX_BACKLOG:
                raise QueueFull()
            return QueueMessage.objects.bulk_create(rows)
    except IntegrityError as exc:
        raise QueueNotFound() from exc


def _live(queue: Queue, now: datetime) -> QuerySet[QueueMessage]:
    retention = int(
        queue.settings.get("message_retention_period") or DEFAULT_RETENTION_SECONDS
    )
    return queue.messages.filter(created_at__gt=now - timedelta(seconds=retention))


@dataclass(frozen=True)
class Lease:
    message: QueueMessage
    lease_id: str


def _lease_id(message: QueueMessage) -> str:
    # A new lease each attempt: an old lease id cannot acknowledge a re-delivery.
    return f"{message.pk.hex}.{message.attempts}"


@transaction.atomic
def pull_messages(
    *,
    queue: Queue,
    now: datetime,
    batch_size: int = 10,
    visibility_timeout_ms: int = 30_000,
) -> list[Lease]:
    """Lease up to ``batch_size`` visible messages for ``visibility_timeout_ms``.

    Messages past the consumer's ``max_retries`` go to its dead-letter queue (or
    are dropped) instead. Concurrent pullers never get the same message.
    """
    consumer = queue.consumers.first()
    consumer_settings = consumer.settings if consumer else {}
    max_retries = consumer_settings.get("max_retries", DEFAULT_MAX_RETRIES)
    _retire_exhausted(queue, consumer, max_retries=max_retries, now=now)
    rows = list(
        _live(queue, now)
        .filter(visible_at__lte=now, attempts__lte=max_retries)
        .select_for_update(skip_locked=True)
        .order_by("visible_at", "created_at")[:batch_size]
    )
    lease_until = now + timedelta(milliseconds=visibility_timeout_ms)
    for message in rows:
        message.attempts += 1
        message.visible_at = lease_until
        message.lease_expires_at = lease_until
    QueueMessage.objects.bulk_update(
        rows, ["attempts", "visible_at", "lease_expires_at"]
    )
    return [Lease(message=m, lease_id=_lease_id(m)) for m in rows]


def _retire_exhausted(
    queue: Queue, consumer: QueueConsumer | None, *, max_retries: int, now: datetime
) -> None:
    exhausted = queue.messages.filter(visible_at__lte=now, attempts__gt=max_retries)
    target = None
    if consumer and consumer.dead_letter_queue:
        target = queue.account.queues.filter(name=consumer.dead_letter_queue).first()
    if target is not None and target.pk != queue.pk:
        exhausted.update(
            queue=target, attempts=0, visible_at=now, lease_expires_at=None
        )
    else:
        exhausted.delete()


def _leased(
    queue: Queue, lease_ids: list[Any], now: datetime
) -> QuerySet[QueueMessage]:
    """The messages whose current, unexpired lease is one of ``lease_ids``."""
    current = Q(pk__in=[])
    for lease_id in lease_ids:
        pk, _, attempts = str(lease_id).partition(".")
        try:
            current |= Q(pk=uuid.UUID(hex=pk), attempts=int(attempts))
        except ValueError:
            continue  # not ours: acknowledging it is a no-op, as for an old lease
    return queue.messages.filter(current, lease_expires_at__gt=now)


@transaction.atomic
def acknowledge(
    *,
    queue: Queue,
    now: datetime,
    acks: list[Any],
    retries: list[tuple[Any, int]] | None = None,
) -> tuple[int, int]:
    """Delete acknowledged messages; make retried ones visible again after their
    delay. Returns (acknowledged, retried) counts of leases that were current."""
    acked, _ = _leased(queue, acks, now).delete()
    retried = 0
    for lease_id, delay in retries or []:
        retried += _leased(queue, [lease_id], now).update(
            visible_at=now + timedelta(seconds=delay), lease_expires_at=None
        )
    return acked, retried


def purge_messages(*, queue: Queue) -> int:
    deleted, _ = queue.messages.all().delete()
    return deleted


def queue_metrics(*, queue: Queue, now: datetime) -> dict[str, Any]:
    """Backlog as the producer binding reports it after a send."""
    totals = _live(queue, now).aggregate(
        count=Count("pk"), bytes=Sum(Length("body")), oldest=Min("created_at")
    )
    oldest = totals["oldest"]
    return {
        "backlogCount": totals["count"],
        "backlogBytes": totals["bytes"] or 0,
        "oldestMessageTimestamp": int(oldest.timestamp() * 1000) if oldest else 0,
    }
