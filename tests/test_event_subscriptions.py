"""Queue event subscriptions: CRUD with one subscription per source per account,
sources we do not have refused by name, and KV namespace events delivered."""

import json
from http import HTTPStatus

import pytest

from accounts.models import QueueMessage
from tests.cloudapi import AccountClient, error_code, ok

pytestmark = pytest.mark.django_db

SUBS = "event_subscriptions/subscriptions"


@pytest.fixture
def api(client, provision) -> AccountClient:
    return AccountClient(client, provision())


@pytest.fixture
def queue(api) -> dict:
    return ok(api.post("queues", {"queue_name": "events"}))


def subscribe(api, queue, source="kv", events=("namespace.created",), **extra):
    return api.post(
        SUBS,
        {
            "name": "kv-events",
            "source": {"type": source},
            "events": list(events),
            "destination": {"type": "queues.queue", "queue_id": queue["queue_id"]},
            **extra,
        },
    )


def delivered(queue) -> list[dict]:
    rows = QueueMessage.objects.filter(queue_id=queue["queue_id"]).order_by(
        "created_at"
    )
    return [json.loads(bytes(m.body)) for m in rows]


def test_create_list_get_update_delete(api, queue):
    made = ok(subscribe(api, queue))
    assert made["source"] == {"type": "kv"}
    assert made["destination"]["queue_id"] == queue["queue_id"]
    listed = api.get(f"{SUBS}?queue_id={queue['queue_id']}&page=1&per_page=1")
    assert [s["id"] for s in ok(listed)] == [made["id"]]
    assert ok(api.get(f"{SUBS}?page=2&per_page=1")) == []
    assert ok(api.get(f"{SUBS}/{made['id']}"))["name"] == "kv-events"
    changed = ok(
        api.patch(
            f"{SUBS}/{made['id']}",
            {"name": "renamed", "events": ["namespace.created", "namespace.deleted"]},
        )
    )
    assert changed["name"] == "renamed" and len(changed["events"]) == 2
    ok(api.delete(f"{SUBS}/{made['id']}"))
    missing = api.get(f"{SUBS}/{made['id']}")
    assert missing.status_code == HTTPStatus.NOT_FOUND
    assert error_code(missing) == 10063


def test_one_subscription_per_source_per_account(api, queue):
    ok(subscribe(api, queue))
    again = subscribe(api, queue, events=["namespace.deleted"])
    assert again.status_code == HTTPStatus.CONFLICT
    assert error_code(again) == 10062


def test_sources_we_do_not_have_are_refused_by_name(api, queue):
    refused = subscribe(api, queue, source="workersAi.model", events=["x"])
    assert refused.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(refused) == 10065
    assert (
        "'workersAi.model' is not available" in refused.json()["errors"][0]["message"]
    )
    unknown_event = subscribe(api, queue, events=["namespace.renamed"])
    assert error_code(unknown_event) == 10001


def test_kv_namespace_events_reach_the_queue(api, queue):
    made = ok(subscribe(api, queue, events=["namespace.created", "namespace.deleted"]))
    namespace = ok(api.post("storage/kv/namespaces", {"title": "watched"}))
    ok(api.delete(f"storage/kv/namespaces/{namespace['id']}"))
    events = delivered(queue)
    assert [e["type"] for e in events] == [
        "cf.kv.namespace.created",
        "cf.kv.namespace.deleted",
    ]
    assert events[0]["payload"] == {"id": namespace["id"], "name": "watched"}
    assert events[0]["metadata"]["eventSubscriptionId"] == made["id"]
    assert events[0]["metadata"]["accountId"] == api.account.id

    # Disabled: nothing more is sent.
    ok(api.patch(f"{SUBS}/{made['id']}", {"enabled": False}))
    ok(api.post("storage/kv/namespaces", {"title": "quiet"}))
    assert len(delivered(queue)) == 2
