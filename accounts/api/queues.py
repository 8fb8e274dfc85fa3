"""Queues endpoints (spec 4.18): queues, their consumer, messages, purge."""

from typing import Any

from django.http import HttpResponse
from django.utils import timezone

from accounts.exceptions import InvalidInput
from accounts.models import Queue
from accounts.services import queues
from accounts.services.validation import whole_number

from . import envelope
from .kit import ApiRequest, endpoint, json_object
from .paging import page_request, paged_response
from .serializers import iso, queue_consumer_json, queue_json, queue_message_json


def _list(request: ApiRequest, account_id: str) -> HttpResponse:
    account = request.cloud_account
    page = page_request(request, default_size=100, max_size=1000)
    rows = queues.list_queues(account=account, names=request.GET.getlist("name"))
    producers = queues.producers_by_queue(account=account)
    return paged_response(rows, page, lambda q: queue_json(q, producers))


def _create(request: ApiRequest, account_id: str) -> HttpResponse:
    body = json_object(request)
    if body.get("jurisdiction"):
        raise InvalidInput(
            "Temporary accounts have one location: leave out 'jurisdiction'."
        )
    queue = queues.create_queue(
        account=request.cloud_account,
        name=body.get("queue_name"),
        queue_settings=body.get("settings"),
        now=timezone.now(),
    )
    return envelope.success(queue_json(queue, {}))


def _queue(request: ApiRequest, queue_id: str) -> Queue:
    return queues.get_queue(account=request.cloud_account, queue_id=queue_id)


def _get(request: ApiRequest, account_id: str, queue_id: str) -> HttpResponse:
    queue = _queue(request, queue_id)
    producers = queues.producers_by_queue(account=request.cloud_account)
    return envelope.success(queue_json(queue, producers))


def _update(request: ApiRequest, account_id: str, queue_id: str) -> HttpResponse:
    body = json_object(request)
    queue = queues.update_queue(
        account=request.cloud_account,
        queue_id=queue_id,
        name=body.get("queue_name"),
        queue_settings=body.get("settings"),
        replace=request.method == "PUT",
        now=timezone.now(),
    )
    producers = queues.producers_by_queue(account=request.cloud_account)
    return envelope.success(queue_json(queue, producers))


def _delete(request: ApiRequest, account_id: str, queue_id: str) -> HttpResponse:
    queues.delete_queue(account=request.cloud_account, queue_id=queue_id)
    return envelope.success({})


def _list_consumers(
    request: ApiRequest, account_id: str, queue_id: str
) -> HttpResponse:
    queue = _queue(request, queue_id)
    return envelope.success(
        [queue_consumer_json(c, queue) for c in queue.consumers.all()]
    )


def _add_consumer(request: ApiRequest, account_id: str, queue_id: str) -> HttpResponse:
    queue = _queue(request, queue_id)
    consumer = queues.add_consumer(
        queue=queue, body=json_object(request), now=timezone.now()
    )
    return envelope.success(queue_consumer_json(consumer, queue))


def _get_consumer(
    request: ApiRequest, account_id: str, queue_id: str, consumer_id: str
) -> HttpResponse:
    queue = _queue(request, queue_id)
    consumer = queues.get_consumer(queue=queue, consumer_id=consumer_id)
    return envelope.success(queue_consumer_json(consumer, queue))


def _update_consumer(
    request: ApiRequest, account_id: str, queue_id: str, consumer_id: str
) -> HttpResponse:
    queue = _queue(request, queue_id)
    consumer = queues.update_consumer(
        queue=queue, consumer_id=consumer_id, body=json_object(request)
    )
    return envelope.success(queue_consumer_json(consumer, queue))


def _delete_consumer(
    request: ApiRequest, account_id: str, queue_id: str, consumer_id: str
) -> HttpResponse:
    queues.delete_consumer(queue=_queue(request, queue_id), consumer_id=consumer_id)
    return envelope.success({})


def _outgoing(item: Any, *, default_delay: Any = None) -> queues.OutgoingMessage:
    if not isinstance(item, dict) or "body" not in item:
        raise InvalidInput(
            'A message is an object like {"body": ..., "content_type": "json"}.'
        )
    return queues.encode_message(
        body=item["body"],
        content_type=item.get("content_type", "json"),
        delay_seconds=item.get("delay_seconds", default_delay),
    )


def _send(request: ApiRequest, account_id: str, queue_id: str) -> HttpResponse:
    queue = _queue(request, queue_id)
    message = _outgoing(json_object(request))
    queues.send_messages(queue=queue, messages=[message], now=timezone.now())
    return envelope.success({})


def _send_batch(request: ApiRequest, account_id: str, queue_id: str) -> HttpResponse:
    queue = _queue(request, queue_id)
    body = json_object(request)
    items = body.get("messages")
    if not isinstance(items, list):
        raise InvalidInput("'messages' must be a list.")
    messages = [_outgoing(i, default_delay=body.get("delay_seconds")) for i in items]
    queues.send_messages(queue=queue, messages=messages, now=timezone.now())
    return envelope.success({})


def _pull(request: ApiRequest, account_id: str, queue_id: str) -> HttpResponse:
    queue = _queue(request, queue_id)
    consumer = queue.consumers.first()
    if consumer is None or consumer.type != "http_pull":
        raise InvalidInput(
            f"Queue '{queue.name}' has no HTTP pull consumer; add one with "
            "wrangler queues consumer http add."
        )
    body = json_object(request, required=False)
    now = timezone.now()
    leases = queues.pull_messages(
        queue=queue,
        now=now,
        batch_size=whole_number(
            body.get("batch_size", consumer.settings.get("batch_size", 10)),
            field="batch_size",
            minimum=1,
            maximum=100,
        ),
        visibility_timeout_ms=whole_number(
            body.get(
                "visibility_timeout_ms",
                consumer.settings.get("visibility_timeout_ms", 30_000),
            ),
            field="visibility_timeout_ms",
            minimum=0,
            maximum=43_200_000,
        ),
    )
    metrics = queues.queue_metrics(queue=queue, now=now)
    return envelope.success(
        {
            "messages": [queue_message_json(lease) for lease in leases],
            "message_backlog_count": metrics["backlogCount"],
        }
    )


def _ack(request: ApiRequest, account_id: str, queue_id: str) -> HttpResponse:
    queue = _queue(request, queue_id)
    body = json_object(request)
    acks, retries = body.get("acks") or [], body.get("retries") or []
    if not isinstance(acks, list) or not isinstance(retries, list):
        raise InvalidInput("'acks' and 'retries' must be lists.")
    if not all(isinstance(i, dict) for i in acks + retries):
        raise InvalidInput('Each ack or retry is an object like {"lease_id": "..."}.')
    acked, retried = queues.acknowledge(
        queue=queue,
        now=timezone.now(),
        acks=[a.get("lease_id") for a in acks],
        retries=[
            (
                r.get("lease_id"),
                whole_number(
                    r.get("delay_seconds", 0),
                    field="delay_seconds",
                    maximum=43_200,
                ),
            )
            for r in retries
        ],
    )
    return envelope.success({"ackCount": acked, "retryCount": retried, "warnings": []})


def _purge(request: ApiRequest, account_id: str, queue_id: str) -> HttpResponse:
    queue = _queue(request, queue_id)
    body = json_object(request, required=False)
    if body.get("delete_messages_permanently") is not True:
        raise InvalidInput('Purging needs {"delete_messages_permanently": true}.')
    queues.purge_messages(queue=queue)
    return envelope.success(queue_json(queue, {}))


def _purge_status(request: ApiRequest, account_id: str, queue_id: str) -> HttpResponse:
    _queue(request, queue_id)
    # Purges finish within their request, so none is ever still running.
    return envelope.success({"completed": True, "started_at": iso(timezone.now())})


collection = endpoint()({"GET": _list, "POST": _create})
queue = endpoint()({"GET": _get, "PATCH": _update, "PUT": _update, "DELETE": _delete})
consumers = endpoint()({"GET": _list_consumers, "POST": _add_consumer})
consumer = endpoint()(
    {"GET": _get_consumer, "PUT": _update_consumer, "DELETE": _delete_consumer}
)
messages = endpoint()({"POST": _send})
messages_batch = endpoint()({"POST": _send_batch})
messages_pull = endpoint()({"POST": _pull})
messages_ack = endpoint()({"POST": _ack})
purge = endpoint()({"POST": _purge, "GET": _purge_status})
