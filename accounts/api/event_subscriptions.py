"""Queue event subscriptions (``wrangler queues subscription ...``), as
Cloudflare's ``/event_subscriptions/subscriptions``."""

from django.http import HttpResponse
from django.utils import timezone

from accounts.models import EventSubscription
from accounts.services import event_subscriptions

from . import envelope
from .kit import ApiRequest, endpoint, json_object
from .paging import page_request, paged_response
from .serializers import iso


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


def _list(request: ApiRequest, account_id: str) -> HttpResponse:
    rows = event_subscriptions.list_subscriptions(
        account=request.cloud_account, queue_id=request.GET.get("queue_id", "")
    )
    return paged_response(rows, page_request(request), subscription_json)


def _create(request: ApiRequest, account_id: str) -> HttpResponse:
    made = event_subscriptions.create_subscription(
        account=request.cloud_account, body=json_object(request), now=timezone.now()
    )
    return envelope.success(subscription_json(made))


def _get(request: ApiRequest, account_id: str, subscription_id: str) -> HttpResponse:
    found = event_subscriptions.get_subscription(
        account=request.cloud_account, subscription_id=subscription_id
    )
    return envelope.success(subscription_json(found))


def _update(request: ApiRequest, account_id: str, subscription_id: str) -> HttpResponse:
    changed = event_subscriptions.update_subscription(
        account=request.cloud_account,
        subscription_id=subscription_id,
        body=json_object(request),
        now=timezone.now(),
    )
    return envelope.success(subscription_json(changed))


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
