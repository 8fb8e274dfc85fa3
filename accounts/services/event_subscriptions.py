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
from accounts.models import CloudAccount, EventSubscription
from accounts.services import queues
from accounts.services.locking import lock_live_account
from accounts.services.validation import is_hex_id

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


def _source(kind: str) -> dict[str, Any]:
    if kind not in OFFERED:
        raise EventSourceNotOffered(
            f"The event source '{kind}' is not available on temporary accounts: "
            f"only {', '.join(sorted(OFFERED))} publishes events here."
        )
    return {"type": kind}


def _events(kind: str, events: list[str]) -> list[str]:
    unknown = sorted(set(events) - set(OFFERED[kind]))
    if unknown:
        raise InvalidInput(
            f"The source '{kind}' has no event {', '.join(unknown)}; it has "
            f"{', '.join(OFFERED[kind])}."
        )
    return list(dict.fromkeys(events))


def create_subscription(
    *,
    account: CloudAccount,
    name: str,
    source_type: str,
    events: list[str],
    queue_id: str,
    now: datetime,
    enabled: bool = True,
) -> EventSubscription:
    """Deliver ``events`` of the source to the account's queue. Raises
    EventSourceNotOffered (naming the source), InvalidInput (an event the
    source has not), QueueNotFound, SubscriptionExists (one per source per
    account)."""
    source = _source(source_type)
    subscription = EventSubscription(
        account=account,
        name=name,
        source_type=source_type,
        source=source,
        events=_events(source_type, events),
        queue=queues.get_queue(account=account, queue_id=queue_id),
        enabled=enabled,
        created_at=now,
        modified_at=now,
    )
    try:
        with transaction.atomic():
            lock_live_account(account_id=account.pk, now=now)
            if account.event_subscriptions.filter(source_type=source_type).exists():
                raise SubscriptionExists()
            subscription.save()
    except IntegrityError as exc:
        raise SubscriptionExists() from exc
    return subscription


def update_subscription(
    *,
    account: CloudAccount,
    subscription_id: str,
    now: datetime,
    name: str | None = None,
    events: list[str] | None = None,
    enabled: bool | None = None,
    queue_id: str | None = None,
    source_type: str | None = None,
) -> EventSubscription:
    """Change what is given (None: keep it); the source is fixed, so a
    ``source_type`` other than the subscription's is refused."""
    with transaction.atomic():
        lock_live_account(account_id=account.pk, now=now)
        subscription = get_subscription(
            account=account, subscription_id=subscription_id
        )
        if source_type is not None and source_type != subscription.source_type:
            raise InvalidInput("A subscription's source cannot change.")
        if name is not None:
            subscription.name = name
        if events is not None:
            subscription.events = _events(subscription.source_type, events)
        if enabled is not None:
            subscription.enabled = enabled
        if queue_id is not None:
            subscription.queue = queues.get_queue(account=account, queue_id=queue_id)
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
