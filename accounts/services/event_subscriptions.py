"""Queue event subscriptions: platform events of a source delivered to a queue.

Stored per account with Cloudflare's rule of one subscription per source per
account. Only sources claimportal has can be subscribed to (KV's namespace
events); any other source is refused at create with its name. An event is a
JSON message in Cloudflare's shape, sent in the transaction of the change that
caused it, so a change that rolls back sends nothing.
"""

import json
import logging
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from accounts.exceptions import (
    DomainError,
    EventSourceNotOffered,
    InvalidInput,
    SubscriptionExists,
    SubscriptionNotFound,
)
from accounts.models import CloudAccount, EventSubscription, Queue
from accounts.services import queues
from accounts.services.locking import lock_live_account
from accounts.services.validation import clean_text, is_hex_id

logger = logging.getLogger("claimportal.events")

# The sources claimportal publishes, with their events (Cloudflare's catalogue).
OFFERED = {"kv": ("namespace.created", "namespace.deleted")}


def list_subscriptions(
    *, account: CloudAccount, queue_id: str = ""
) -> QuerySet[EventSubscription]:
    rows = account.event_subscriptions.all()
    return rows.filter(queue_id=queue_id) if queue_id else rows


def get_subscription(
    *, account: CloudAccount, subscription_id: str
) -> EventSubscription:
    found = None
    if is_hex_id(subscription_id):
        found = account.event_subscriptions.filter(pk=subscription_id).first()
    if found is None:
        raise SubscriptionNotFound()
    return found


def _source(raw: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise InvalidInput('\'source\' must be an object like {"type": "kv"}.')
    kind = clean_text(raw["type"], field="source.type", max_length=64)
    if kind not in OFFERED:
        raise EventSourceNotOffered(
            f"The event source '{kind}' is not available on temporary accounts: "
            f"only {', '.join(sorted(OFFERED))} publishes events here."
        )
    return kind, {"type": kind}


def _events(kind: str, raw: Any) -> list[str]:
    if not isinstance(raw, list) or not raw or not all(isinstance(e, str) for e in raw):
        raise InvalidInput("'events' must be a non-empty list of event names.")
    unknown = sorted(set(raw) - set(OFFERED[kind]))
    if unknown:
        raise InvalidInput(
            f"The source '{kind}' has no event {', '.join(unknown)}; it has "
            f"{', '.join(OFFERED[kind])}."
        )
    return list(dict.fromkeys(raw))


def _queue(account: CloudAccount, raw: Any) -> Queue:
    if not isinstance(raw, dict) or raw.get("type", "queues.queue") != "queues.queue":
        raise InvalidInput(
            '\'destination\' must be {"type": "queues.queue", "queue_id": ...}.'
        )
    return queues.get_queue(account=account, queue_id=str(raw.get("queue_id", "")))


def _name(raw: Any) -> str:
    return clean_text(raw, field="name", max_length=255)


def _enabled(raw: Any) -> bool:
    if not isinstance(raw, bool):
        raise InvalidInput("'enabled' must be true or false.")
    return raw


def create_subscription(
    *, account: CloudAccount, body: dict[str, Any], now: datetime
) -> EventSubscription:
    """Raises EventSourceNotOffered (naming the source), InvalidInput,
    QueueNotFound, SubscriptionExists (one per source per account)."""
    kind, source = _source(body.get("source"))
    subscription = EventSubscription(
        account=account,
        name=_name(body.get("name")),
        source_type=kind,
        source=source,
        events=_events(kind, body.get("events")),
        queue=_queue(account, body.get("destination")),
        enabled=_enabled(body.get("enabled", True)),
        created_at=now,
        modified_at=now,
    )
    try:
        with transaction.atomic():
            lock_live_account(account_id=account.pk, now=now)
            if account.event_subscriptions.filter(source_type=kind).exists():
                raise SubscriptionExists()
            subscription.save()
    except IntegrityError as exc:
        raise SubscriptionExists() from exc
    return subscription


def update_subscription(
    *,
    account: CloudAccount,
    subscription_id: str,
    body: dict[str, Any],
    now: datetime,
) -> EventSubscription:
    """Change name, events, enabled or destination (the source is fixed)."""
    with transaction.atomic():
        lock_live_account(account_id=account.pk, now=now)
        subscription = get_subscription(
            account=account, subscription_id=subscription_id
        )
        if "source" in body and body["source"] != subscription.source:
            raise InvalidInput("A subscription's source cannot change.")
        if "name" in body:
            subscription.name = _name(body["name"])
        if "events" in body:
            subscription.events = _events(subscription.source_type, body["events"])
        if "enabled" in body:
            subscription.enabled = _enabled(body["enabled"])
        if "destination" in body:
            subscription.queue = _queue(account, body["destination"])
        subscription.modified_at = now
        subscription.save()
    return subscription


def delete_subscription(*, account: CloudAccount, subscription_id: str) -> None:
    with transaction.atomic():
        lock_live_account(account_id=account.pk)
        get_subscription(account=account, subscription_id=subscription_id).delete()


def publish(
    *,
    account_id: str,
    source_type: str,
    event: str,
    payload: dict[str, Any],
    now: datetime,
) -> None:
    """Send ``event`` to the queue of each enabled subscription that wants it.

    A full or vanished queue loses the event (logged), never the change.
    """
    wanted = EventSubscription.objects.filter(
        account_id=account_id, source_type=source_type, enabled=True
    ).select_related("queue")
    for subscription in wanted:
        if event not in subscription.events:
            continue
        body = {
            "type": f"cf.{source_type}.{event}",
            "source": subscription.source,
            "payload": payload,
            "metadata": {
                "accountId": account_id,
                "eventSubscriptionId": subscription.id,
                "eventSchemaVersion": 1,
                "eventTimestamp": now.isoformat(timespec="milliseconds").replace(
                    "+00:00", "Z"
                ),
            },
        }
        message = queues.new_message(body=json.dumps(body).encode())
        try:
            with transaction.atomic():
                queues.send_messages(
                    queue=subscription.queue, messages=[message], now=now
                )
        except DomainError as error:
            logger.warning(
                "event %s for subscription %s not delivered: %s",
                event,
                subscription.id,
                error.message,
            )
