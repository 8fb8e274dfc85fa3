"""Queues endpoints (spec 4.18): queues, their consumer, messages, purge."""

from django.http import HttpResponse
from django.utils import timezone

from accounts.exceptions import InvalidInput
from accounts.models import Queue
from accounts.services import queues

from . import envelope
from .inputs import JSON, Boolean, Field, Input, Integer, ListOf, Nested, Text
from .kit import ApiRequest, endpoint, operation
from .openapi import ref
from .paging import Paging, paged_response
from .serializers import iso, queue_consumer_json, queue_json, queue_message_json

TAG = "queues"
QUEUE = ref("Queue")
CONSUMER = ref("QueueConsumer")


def _settings(
    name: str, bounds: dict[str, tuple[int, int]], **more: Field
) -> type[Input]:
    """The settings object of a queue or consumer, from the service's bounds
    (Cloudflare's, as wrangler also checks them)."""
    fields: dict[str, Field] = {
        key: Integer(minimum=low, maximum=high) for key, (low, high) in bounds.items()
    }
    return type(name, (Input,), {"fields": {}, **fields, **more})


QueueSettings = _settings(
    "QueueSettings", queues.QUEUE_SETTINGS, delivery_paused=Boolean()
)


ConsumerSettings = _settings("ConsumerSettings", queues.CONSUMER_SETTINGS)


class Listing(Paging):
    name = ListOf(Text(max_length=63), max_items=100, description="Only these.")


class NewQueue(Input):
    queue_name = Text(required=True, max_length=63)
    settings = Nested(QueueSettings)
    jurisdiction = Text(blank=True, max_length=32, description="Refused if given.")


class QueueChange(Input):
    """Settings to change (PATCH merges them, PUT replaces them); a queue keeps
    its name."""

    queue_name = Text(max_length=63)
    settings = Nested(QueueSettings)


class Consumer(Input):
    type = Text(choices=tuple(sorted(queues.CONSUMER_TYPES)), default="worker")
    script_name = Text(max_length=63, description="The Worker (type worker).")
    script = Text(max_length=63, description="Another name for script_name.")
    environment_name = Text(blank=True, max_length=63)
    dead_letter_queue = Text(blank=True, max_length=63, default="")
    settings = Nested(ConsumerSettings)


class Message(Input):
    body = JSON(required=True, description="JSON, text, or base64 bytes and v8.")
    content_type = Text(choices=tuple(sorted(queues.CONTENT_TYPES)), default="json")
    delay_seconds = Integer()


class Batch(Input):
    messages = ListOf(Nested(Message), required=True, max_items=1000)
    delay_seconds = Integer(description="For each message without its own.")


class Pull(Input):
    batch_size = Integer(minimum=1, maximum=100)
    visibility_timeout_ms = Integer(maximum=43_200_000)


class Lease(Input):
    lease_id = Text(required=True, max_length=1024)


class Retry(Input):
    lease_id = Text(required=True, max_length=1024)
    delay_seconds = Integer(maximum=43_200, default=0)


class Acknowledgement(Input):
    acks = ListOf(Nested(Lease), max_items=1000, default=[])
    retries = ListOf(Nested(Retry), max_items=1000, default=[])


class Purge(Input):
    delete_messages_permanently = Boolean(default=False)


def _consumer_kwargs(body: Consumer) -> dict:
    return {
        "type": body.type,
        "script_name": body.script_name or body.script or "",
        "dead_letter_queue": body.dead_letter_queue,
        "consumer_settings": body.settings.present() if body.settings else {},
    }


@operation("List queues.", tag=TAG, query=Listing, result=QUEUE, listing=True)
def _list(request: ApiRequest, account_id: str, *, query: Listing) -> HttpResponse:
    account = request.cloud_account
    rows = queues.list_queues(account=account, names=query.name)
    producers = queues.producers_by_queue(account=account)
    return paged_response(
        rows, query.page(default_size=100), lambda q: queue_json(q, producers)
    )


@operation("Create a queue.", tag=TAG, body=NewQueue, result=QUEUE)
def _create(request: ApiRequest, account_id: str, *, body: NewQueue) -> HttpResponse:
    if body.jurisdiction:
        raise InvalidInput(
            "Temporary accounts have one location: leave out 'jurisdiction'."
        )
    queue = queues.create_queue(
        account=request.cloud_account,
        name=body.queue_name,
        queue_settings=body.settings.present() if body.settings else {},
        now=timezone.now(),
    )
    return envelope.success(queue_json(queue, {}))


def _queue(request: ApiRequest, queue_id: str) -> Queue:
    return queues.get_queue(account=request.cloud_account, queue_id=queue_id)


@operation("One queue.", tag=TAG, result=QUEUE)
def _get(request: ApiRequest, account_id: str, queue_id: str) -> HttpResponse:
    queue = _queue(request, queue_id)
    producers = queues.producers_by_queue(account=request.cloud_account)
    return envelope.success(queue_json(queue, producers))


@operation(
    "Change a queue's settings (PATCH merges, PUT replaces).",
    tag=TAG,
    body=QueueChange,
    result=QUEUE,
)
def _update(
    request: ApiRequest, account_id: str, queue_id: str, *, body: QueueChange
) -> HttpResponse:
    queue = queues.update_queue(
        account=request.cloud_account,
        queue_id=queue_id,
        name=body.queue_name,
        queue_settings=body.settings.present() if body.settings else {},
        replace=request.method == "PUT",
        now=timezone.now(),
    )
    producers = queues.producers_by_queue(account=request.cloud_account)
    return envelope.success(queue_json(queue, producers))


@operation("Delete a queue and its messages.", tag=TAG)
def _delete(request: ApiRequest, account_id: str, queue_id: str) -> HttpResponse:
    queues.delete_queue(account=request.cloud_account, queue_id=queue_id)
    return envelope.success({})


@operation(
    "The queue's consumers (at most one).", tag=TAG, result=CONSUMER, listing=True
)
def _list_consumers(
    request: ApiRequest, account_id: str, queue_id: str
) -> HttpResponse:
    queue = _queue(request, queue_id)
    return envelope.success(
        [queue_consumer_json(c, queue) for c in queue.consumers.all()]
    )


@operation(
    "Attach the queue's consumer (adding the same Worker again updates it).",
    tag=TAG,
    body=Consumer,
    result=CONSUMER,
)
def _add_consumer(
    request: ApiRequest, account_id: str, queue_id: str, *, body: Consumer
) -> HttpResponse:
    queue = _queue(request, queue_id)
    consumer = queues.add_consumer(
        queue=queue, now=timezone.now(), **_consumer_kwargs(body)
    )
    return envelope.success(queue_consumer_json(consumer, queue))


@operation("One consumer.", tag=TAG, result=CONSUMER)
def _get_consumer(
    request: ApiRequest, account_id: str, queue_id: str, consumer_id: str
) -> HttpResponse:
    queue = _queue(request, queue_id)
    consumer = queues.get_consumer(queue=queue, consumer_id=consumer_id)
    return envelope.success(queue_consumer_json(consumer, queue))


@operation("Replace a consumer's settings.", tag=TAG, body=Consumer, result=CONSUMER)
def _update_consumer(
    request: ApiRequest,
    account_id: str,
    queue_id: str,
    consumer_id: str,
    *,
    body: Consumer,
) -> HttpResponse:
    queue = _queue(request, queue_id)
    consumer = queues.update_consumer(
        queue=queue, consumer_id=consumer_id, **_consumer_kwargs(body)
    )
    return envelope.success(queue_consumer_json(consumer, queue))


@operation("Remove a consumer.", tag=TAG)
def _delete_consumer(
    request: ApiRequest, account_id: str, queue_id: str, consumer_id: str
) -> HttpResponse:
    queues.delete_consumer(queue=_queue(request, queue_id), consumer_id=consumer_id)
    return envelope.success({})


def _outgoing(message: Message, *, delay: int | None) -> queues.OutgoingMessage:
    return queues.encode_message(
        body=message.body,
        content_type=message.content_type,
        delay_seconds=delay if message.delay_seconds is None else message.delay_seconds,
    )


@operation("Send one message.", tag=TAG, body=Message)
def _send(
    request: ApiRequest, account_id: str, queue_id: str, *, body: Message
) -> HttpResponse:
    queue = _queue(request, queue_id)
    message = _outgoing(body, delay=None)
    queues.send_messages(queue=queue, messages=[message], now=timezone.now())
    return envelope.success({})


@operation("Send messages, all or none.", tag=TAG, body=Batch)
def _send_batch(
    request: ApiRequest, account_id: str, queue_id: str, *, body: Batch
) -> HttpResponse:
    queue = _queue(request, queue_id)
    messages = [_outgoing(m, delay=body.delay_seconds) for m in body.messages]
    queues.send_messages(queue=queue, messages=messages, now=timezone.now())
    return envelope.success({})


@operation(
    "Lease messages to an HTTP pull consumer.",
    tag=TAG,
    body=Pull,
    body_required=False,
    result={"type": "object", "properties": {"messages": {"type": "array"}}},
)
def _pull(
    request: ApiRequest, account_id: str, queue_id: str, *, body: Pull
) -> HttpResponse:
    queue = _queue(request, queue_id)
    consumer = queue.consumers.first()
    if consumer is None or consumer.type != "http_pull":
        raise InvalidInput(
            f"Queue '{queue.name}' has no HTTP pull consumer; add one with "
            "wrangler queues consumer http add."
        )
    now = timezone.now()
    leases = queues.pull_messages(
        queue=queue,
        now=now,
        batch_size=body.batch_size or consumer.settings.get("batch_size", 10),
        visibility_timeout_ms=(
            consumer.settings.get("visibility_timeout_ms", 30_000)
            if body.visibility_timeout_ms is None
            else body.visibility_timeout_ms
        ),
    )
    metrics = queues.queue_metrics(queue=queue, now=now)
    return envelope.success(
        {
            "messages": [queue_message_json(lease) for lease in leases],
            "message_backlog_count": metrics["backlogCount"],
        }
    )


@operation(
    "Acknowledge or retry leased messages.",
    tag=TAG,
    body=Acknowledgement,
    result={"type": "object", "properties": {"ackCount": {"type": "integer"}}},
)
def _ack(
    request: ApiRequest, account_id: str, queue_id: str, *, body: Acknowledgement
) -> HttpResponse:
    queue = _queue(request, queue_id)
    acked, retried = queues.acknowledge(
        queue=queue,
        now=timezone.now(),
        acks=[a.lease_id for a in body.acks],
        retries=[(r.lease_id, r.delay_seconds) for r in body.retries],
    )
    return envelope.success({"ackCount": acked, "retryCount": retried, "warnings": []})


@operation(
    "Delete every message of the queue.",
    tag=TAG,
    body=Purge,
    body_required=False,
    result=QUEUE,
)
def _purge(
    request: ApiRequest, account_id: str, queue_id: str, *, body: Purge
) -> HttpResponse:
    queue = _queue(request, queue_id)
    if not body.delete_messages_permanently:
        raise InvalidInput('Purging needs {"delete_messages_permanently": true}.')
    queues.purge_messages(queue=queue)
    return envelope.success(queue_json(queue, {}))


@operation(
    "Purge status (purges finish within their request).",
    tag=TAG,
    result={"type": "object", "properties": {"completed": {"type": "boolean"}}},
)
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
