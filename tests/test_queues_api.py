"""Queues over client/v4: queues, consumers as wrangler deploy manages them,
messages with HTTP pull, limits."""

import base64
from datetime import timedelta
from http import HTTPStatus

import pytest

from accounts.models import Queue, QueueMessage, WorkerScript, WorkerVersion
from accounts.services import queues
from tests.cloudapi import AccountClient, concurrently, error_code, ok

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client, provision) -> AccountClient:
    return AccountClient(client, provision())


def make_queue(api, name="jobs", **settings) -> dict:
    body = {"queue_name": name}
    if settings:
        body["settings"] = settings
    return ok(api.post("queues", body))


def test_create_list_filter_and_page_past_the_end(api):
    jobs = make_queue(api, "jobs")
    make_queue(api, "mail")
    assert len(jobs["queue_id"]) == 32
    listed = api.get("queues?page=1").json()
    assert [q["queue_name"] for q in listed["result"]] == ["jobs", "mail"]
    first = listed["result"][0]
    assert first["consumers"] == []
    assert first["producers_total_count"] == 0
    assert first["created_on"].endswith("Z")
    # Provisioning's look-up: the name must filter, and can repeat.
    assert [q["queue_name"] for q in ok(api.get("queues?name=mail&page=1"))] == ["mail"]
    both = ok(api.get("queues?name=mail&name=jobs"))
    assert {q["queue_name"] for q in both} == {"jobs", "mail"}
    assert ok(api.get("queues?page=1&name=not-yet")) == []
    assert ok(api.get("queues?page=2")) == []


def test_get_update_pause_and_delete(api):
    jobs = make_queue(api, "jobs", delivery_delay=5)
    path = f"queues/{jobs['queue_id']}"
    assert ok(api.get(path))["settings"] == {"delivery_delay": 5}
    patched = ok(
        api.patch(path, {"queue_name": "jobs", "settings": {"delivery_paused": True}})
    )
    assert patched["settings"] == {"delivery_delay": 5, "delivery_paused": True}
    replaced = ok(api.put(path, {"settings": {"message_retention_period": 600}}))
    assert replaced["settings"] == {"message_retention_period": 600}
    renamed = api.patch(path, {"queue_name": "other"})
    assert renamed.status_code == HTTPStatus.BAD_REQUEST
    ok(api.delete(path))
    assert error_code(api.get(path)) == 11000
    assert error_code(api.delete(path)) == 11000


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"queue_name": ""},
        {"queue_name": "Upper"},
        {"queue_name": "x" * 64},
        {"queue_name": "ok", "settings": {"delivery_delay": 86401}},
        {"queue_name": "ok", "settings": {"message_retention_period": 59}},
        {"queue_name": "ok", "settings": {"nonsense": 1}},
        {"queue_name": "ok", "settings": "fast"},
        {"queue_name": "ok", "jurisdiction": "eu"},
    ],
)
def test_bad_queue_bodies_are_400_and_create_nothing(api, body):
    assert api.post("queues", body).status_code == HTTPStatus.BAD_REQUEST
    assert not Queue.objects.exists()


def test_names_are_unique_and_the_count_is_limited(api, settings):
    make_queue(api, "jobs")
    assert api.post("queues", {"queue_name": "jobs"}).status_code == HTTPStatus.CONFLICT
    settings.CLAIMPORTAL_QUEUES_MAX = 2
    make_queue(api, "two")
    response = api.post("queues", {"queue_name": "three"})
    assert error_code(response) == 11002
    assert "2 queues" in response.json()["errors"][0]["message"]


def test_the_deploy_consumer_flow_posts_then_puts(api):
    """What wrangler deploy does (spec 2.4, 2.5): POST the consumer the first
    time, find it by ``type`` and ``script`` and PUT it on redeploy."""
    jobs = make_queue(api, "jobs")
    body = {
        "type": "worker",
        "script_name": "full-worker",
        "settings": {"batch_size": 5, "max_wait_time_ms": 2000},
    }
    # The consumer POST arrives labelled text/plain.
    ok(api.post(f"queues/{jobs['queue_id']}/consumers", body))
    [queue] = ok(api.get("queues?page=1&name=jobs"))
    [consumer] = queue["consumers"]
    assert consumer["type"] == "worker"
    assert consumer["script"] == "full-worker"
    assert consumer["settings"] == {"batch_size": 5, "max_wait_time_ms": 2000}

    body["settings"]["batch_size"] = 7
    path = f"queues/{jobs['queue_id']}/consumers/{consumer['consumer_id']}"
    assert ok(api.put(path, body))["settings"]["batch_size"] == 7
    # A repeated POST by the same Worker updates rather than duplicates.
    ok(api.post(f"queues/{jobs['queue_id']}/consumers", body))
    assert len(ok(api.get(f"queues/{jobs['queue_id']}/consumers"))) == 1
    assert ok(api.get(path))["script_name"] == "full-worker"

    other = api.post(
        f"queues/{jobs['queue_id']}/consumers",
        {"type": "worker", "script_name": "another"},
    )
    assert other.status_code == HTTPStatus.CONFLICT
    assert (
        "already has a consumer (full-worker)" in other.json()["errors"][0]["message"]
    )
    ok(api.delete(path))
    assert error_code(api.delete(path)) == 11001


@pytest.mark.parametrize(
    "body",
    [
        {"type": "worker"},
        {"type": "cron", "script_name": "w"},
        {"type": "worker", "script_name": "w", "settings": {"batch_size": 0}},
        {"type": "worker", "script_name": "w", "settings": {"batch_size": 101}},
        {"type": "worker", "script_name": "w", "settings": {"max_retries": "x"}},
        {"type": "worker", "script_name": "w", "dead_letter_queue": "Bad Name"},
    ],
)
def test_bad_consumers_are_400(api, body):
    jobs = make_queue(api)
    response = api.post(f"queues/{jobs['queue_id']}/consumers", body)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert ok(api.get(f"queues/{jobs['queue_id']}/consumers")) == []


def test_producers_are_the_workers_whose_current_version_sends_there(api, now):
    make_queue(api, "jobs")
    script = WorkerScript.objects.create(account=api.account, name="full-worker")
    version = WorkerVersion.objects.create(
        script=script,
        number=1,
        bindings=[{"type": "queue", "name": "JOBS", "queue_name": "jobs"}],
    )
    script.current_version = version
    script.save(update_fields=["current_version"])
    [queue] = ok(api.get("queues?name=jobs"))
    assert queue["producers"] == [{"type": "worker", "script": "full-worker"}]
    assert queue["producers_total_count"] == 1


def test_another_accounts_queue_is_invisible(client, provision):
    mine = AccountClient(client, provision())
    theirs = AccountClient(client, provision())
    jobs = make_queue(theirs, "jobs")
    assert ok(mine.get("queues?name=jobs")) == []
    for response in [
        mine.get(f"queues/{jobs['queue_id']}"),
        mine.post(f"queues/{jobs['queue_id']}/messages", {"body": 1}),
        mine.post(
            f"queues/{jobs['queue_id']}/consumers",
            {"type": "worker", "script_name": "w"},
        ),
        mine.delete(f"queues/{jobs['queue_id']}"),
    ]:
        assert response.status_code == HTTPStatus.NOT_FOUND
        assert error_code(response) == 11000


# --- Messages ---------------------------------------------------------------------


def pull_queue(api, name="pulled") -> str:
    queue = make_queue(api, name)
    ok(
        api.post(
            f"queues/{queue['queue_id']}/consumers",
            {"type": "http_pull", "settings": {"max_retries": 1}},
        )
    )
    return f"queues/{queue['queue_id']}"


def test_send_pull_and_acknowledge(api):
    path = pull_queue(api)
    ok(api.post(f"{path}/messages", {"body": {"n": 1}, "content_type": "json"}))
    ok(
        api.post(
            f"{path}/messages/batch",
            {
                "messages": [
                    {"body": "hello", "content_type": "text"},
                    {
                        "body": base64.b64encode(b"\x00\x01").decode(),
                        "content_type": "bytes",
                    },
                ]
            },
        )
    )
    pulled = ok(api.post(f"{path}/messages/pull", {"batch_size": 10}))
    bodies = [m["body"] for m in pulled["messages"]]
    assert bodies == ['{"n":1}', "hello", "AAE="]
    assert all(m["attempts"] == 1 for m in pulled["messages"])
    # Leased messages are invisible to the next pull.
    assert ok(api.post(f"{path}/messages/pull", {}))["messages"] == []

    first, second, third = (m["lease_id"] for m in pulled["messages"])
    done = ok(
        api.post(
            f"{path}/messages/ack",
            {
                "acks": [{"lease_id": first}, {"lease_id": "not-a-lease"}],
                "retries": [{"lease_id": second}],
            },
        )
    )
    assert done == {"ackCount": 1, "retryCount": 1, "warnings": []}
    again = ok(api.post(f"{path}/messages/pull", {}))["messages"]
    assert [(m["body"], m["attempts"]) for m in again] == [("hello", 2)]
    # The third lease expires unacknowledged; it is redelivered later.
    assert third not in {m["lease_id"] for m in again}


def test_messages_past_max_retries_go_to_the_dead_letter_queue(api, now):
    dead = make_queue(api, "dead")
    main = make_queue(api, "main")
    ok(
        api.post(
            f"queues/{main['queue_id']}/consumers",
            {
                "type": "http_pull",
                "dead_letter_queue": "dead",
                "settings": {"max_retries": 1},
            },
        )
    )
    queue = Queue.objects.get(pk=main["queue_id"])
    [message] = queues.send_messages(
        queue=queue, messages=[queues.new_message(body=b"1")], now=now
    )
    for attempt in range(2):  # the first delivery and one retry
        moment = now + timedelta(minutes=attempt)
        [lease] = queues.pull_messages(queue=queue, now=moment, visibility_timeout_ms=1)
        assert lease.message.attempts == attempt + 1
    later = now + timedelta(minutes=5)
    assert queues.pull_messages(queue=queue, now=later) == []
    moved = QueueMessage.objects.get(pk=message.pk)
    assert moved.queue_id == dead["queue_id"]
    assert moved.attempts == 0


def test_delivery_delay_and_retention(api, now):
    queue = Queue.objects.get(
        pk=make_queue(api, "slow", delivery_delay=60, message_retention_period=600)[
            "queue_id"
        ]
    )
    queues.send_messages(queue=queue, messages=[queues.new_message(body=b"1")], now=now)
    assert queues.pull_messages(queue=queue, now=now + timedelta(seconds=59)) == []
    assert len(queues.pull_messages(queue=queue, now=now + timedelta(seconds=61))) == 1
    metrics = queues.queue_metrics(queue=queue, now=now + timedelta(seconds=61))
    assert metrics["backlogCount"] == 1
    assert metrics["backlogBytes"] == 1
    gone = queues.queue_metrics(queue=queue, now=now + timedelta(seconds=601))
    assert gone["backlogCount"] == 0


def test_pull_needs_an_http_pull_consumer(api):
    jobs = make_queue(api)
    response = api.post(f"queues/{jobs['queue_id']}/messages/pull", {})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "no HTTP pull consumer" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"content_type": "json"},
        {"body": 5, "content_type": "text"},
        {"body": "!!", "content_type": "bytes"},
        {"body": 1, "content_type": "xml"},
        {"body": 1, "delay_seconds": -1},
        {"body": "x" * 200_000, "content_type": "text"},
    ],
)
def test_bad_messages_are_400(api, body):
    jobs = make_queue(api)
    response = api.post(f"queues/{jobs['queue_id']}/messages", body)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not QueueMessage.objects.exists()


def test_a_bad_message_in_a_batch_sends_none(api):
    jobs = make_queue(api)
    response = api.post(
        f"queues/{jobs['queue_id']}/messages/batch",
        {"messages": [{"body": 1}, {"body": 2, "content_type": "xml"}]},
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not QueueMessage.objects.exists()


def test_the_backlog_is_bounded_and_purge_empties_it(api, settings):
    settings.CLAIMPORTAL_QUEUE_MAX_BACKLOG = 2
    path = f"queues/{make_queue(api)['queue_id']}"
    ok(api.post(f"{path}/messages/batch", {"messages": [{"body": 1}, {"body": 2}]}))
    full = api.post(f"{path}/messages", {"body": 3})
    assert full.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert error_code(full) == 11003
    assert api.post(f"{path}/purge", {}).status_code == HTTPStatus.BAD_REQUEST
    ok(api.post(f"{path}/purge", {"delete_messages_permanently": True}))
    assert not QueueMessage.objects.exists()
    assert ok(api.get(f"{path}/purge"))["completed"] is True


@pytest.mark.django_db(transaction=True)
def test_concurrent_pullers_never_share_a_message(provision, now):
    account = provision().account
    queue = queues.create_queue(account=account, name="shared", now=now)
    queues.send_messages(
        queue=queue,
        messages=[queues.new_message(body=b"%d" % i) for i in range(40)],
        now=now,
    )

    def pull(_: int) -> list:
        seen = []
        for _ in range(5):
            leases = queues.pull_messages(queue=queue, now=now, batch_size=3)
            seen += [lease.message.pk for lease in leases]
        return seen

    seen = [pk for batch in concurrently(4, pull) for pk in batch]
    assert len(seen) == len(set(seen)) == 40


@pytest.mark.parametrize(
    "path", ["queues?name=%00", "queues/%00", "queues/%00/consumers/%00"]
)
def test_odd_ids_and_filters_are_4xx_never_5xx(api, path):
    for method in ("get", "put", "delete"):
        assert 400 <= api.call(method, path).status_code < 500
