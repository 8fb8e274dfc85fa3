"""Queue event subscriptions (``wrangler queues subscription ...``), as
Cloudflare's ``/event_subscriptions/subscriptions``."""

from django.http import HttpResponse
from django.utils import timezone

from accounts.models import EventSubscription
from accounts.services import event_subscriptions

from . import envelope
from .inputs import Boolean, Input, ListOf, Nested, Text
from .kit import ApiRequest, endpoint, operation
from .openapi import ref
from .paging import Paging, paged_response
from .serializers import iso

TAG = "queues"
SUBSCRIPTION = ref("EventSubscription")


class Source(Input):
    """Where events come from; a source not offered here is refused by name
    (10065), whatever else it carries."""

    unknown = "ignore"
    type = Text(required=True, max_length=64)


class Destination(Input):
    type = Text(choices=("queues.queue",), default="queues.queue")
    queue_id = Text(required=True, max_length=64)


class NewSubscription(Input):
    name = Text(required=True, max_length=255)
    enabled = Boolean(default=True)
    source = Nested(Source, required=True)
    destination = Nested(Destination, required=True)
    events = ListOf(Text(max_length=64), required=True, min_items=1, max_items=100)


SubscriptionChange = NewSubscription.partial()


class Listing(Paging):
    queue_id = Text(blank=True, max_length=64, default="")


def subscription_json(subscription: EventSubscription) -> dict:
    return {
        "id": subscription.id,
        "name": subscription.name,
        "enabled": subscription.enabled,
        "source": subscription.source,
        "destination": {"type": "queues.queue", "queue_id": subscription.queue_id},
        "events": subscription.events,
        "created_at": iso(subscription.created_at),
        "modified_at": iso(subscription.modified_at),
    }


@operation(
    "List event subscriptions (queue_id filters).",
    tag=TAG,
    query=Listing,
    result=SUBSCRIPTION,
    listing=True,
)
def _list(request: ApiRequest, account_id: str, *, query: Listing) -> HttpResponse:
    rows = event_subscriptions.list_subscriptions(
        account=request.cloud_account, queue_id=query.queue_id
    )
    return paged_response(rows, query.page(), subscription_json)


@operation(
    "Subscribe a queue to a source's events; one per source per account, and "
    "only sources claimportal has (kv).",
    tag=TAG,
    body=NewSubscription,
    result=SUBSCRIPTION,
)
def _create(
    request: ApiRequest, account_id: str, *, body: NewSubscription
) -> HttpResponse:
    made = event_subscriptions.create_subscription(
        account=request.cloud_account,
        name=body.name,
        source_type=body.source.type,
        events=body.events,
        queue_id=body.destination.queue_id,
        enabled=body.enabled,
        now=timezone.now(),
    )
    return envelope.success(subscription_json(made))


@operation("One event subscription.", tag=TAG, result=SUBSCRIPTION)
def _get(request: ApiRequest, account_id: str, subscription_id: str) -> HttpResponse:
    found = event_subscriptions.get_subscription(
        account=request.cloud_account, subscription_id=subscription_id
    )
    return envelope.success(subscription_json(found))


@operation(
    "Change name, events, enabled or destination.",
    tag=TAG,
    body=SubscriptionChange,
    result=SUBSCRIPTION,
)
def _update(
    request: ApiRequest, account_id: str, subscription_id: str, *, body: Input
) -> HttpResponse:
    given = body.values()
    changed = event_subscriptions.update_subscription(
        account=request.cloud_account,
        subscription_id=subscription_id,
        now=timezone.now(),
        name=given["name"],
        events=given["events"],
        enabled=given["enabled"],
        queue_id=given["destination"] and given["destination"].queue_id,
        source_type=given["source"] and given["source"].type,
    )
    return envelope.success(subscription_json(changed))


@operation("Delete an event subscription.", tag=TAG, result=SUBSCRIPTION)
def _delete(request: ApiRequest, account_id: str, subscription_id: str) -> HttpResponse:
    found = event_subscriptions.get_subscription(
        account=request.cloud_account, subscription_id=subscription_id
    )
    result = subscription_json(found)
    event_subscriptions.delete_subscription(
        account=request.cloud_account, subscription_id=subscription_id
    )
    return envelope.success(result)


subscriptions = endpoint()({"GET": _list, "POST": _create})
subscription = endpoint()({"GET": _get, "PATCH": _update, "DELETE": _delete})
