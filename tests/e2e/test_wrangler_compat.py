"""The real wrangler 4.164.0 over what used to have no route: D1 time travel,
queue event subscriptions, and ``delete`` of a Worker with Durable Objects
without a false container warning. Each effect is read back from the store."""

import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from accounts.models import D1Database, EventSubscription, QueueMessage, WorkerScript
from accounts.services import d1

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

T = "--temporary"
PROJECTS = Path(__file__).resolve().parent / "projects"


def run(wrangler, *args, cwd):
    result = wrangler(*args, T, cwd=cwd, timeout=180)
    assert result.returncode == 0, result.output
    return result


def json_out(result):
    text = result.stdout
    return json.loads(
        text[min(i for i in (text.find("["), text.find("{")) if i >= 0) :]
    )


def names(database: D1Database) -> list[str]:
    [result] = d1.run_queries(
        database=database, queries=[d1.Query(sql="SELECT x FROM notes ORDER BY x")]
    )
    return [row[0] for row in result.rows]


def test_time_travel_subscriptions_and_delete_with_the_real_wrangler(
    wrangler, tmp_path
):
    work = shutil.copytree(PROJECTS / "full", tmp_path / "full")

    # D1 time travel: a row written three minutes ago, one now.
    run(wrangler, "d1", "create", "history", cwd=work)
    database = D1Database.objects.get(name="history")
    D1Database.objects.filter(pk=database.pk).update(
        created_at=datetime.now(UTC) - timedelta(minutes=10)
    )
    database.refresh_from_db()
    sql = "CREATE TABLE notes (x); INSERT INTO notes VALUES ('a')"
    run(wrangler, "d1", "execute", "history", "--remote", "--command", sql, cwd=work)
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    then = (minute - timedelta(minutes=3) + timedelta(seconds=1)).timestamp()
    os.utime(default_storage.path(database.storage_name), (then, then))
    insert = "INSERT INTO notes VALUES ('b')"
    run(wrangler, "d1", "execute", "history", "--remote", "--command", insert, cwd=work)

    current = json_out(
        run(wrangler, "d1", "time-travel", "info", "history", "--json", cwd=work)
    )["bookmark"]
    moment = (minute - timedelta(minutes=2)).isoformat().replace("+00:00", "Z")
    info = run(
        wrangler,
        "d1",
        "time-travel",
        "info",
        "history",
        f"--timestamp={moment}",
        cwd=work,
    )
    assert "corresponds with bookmark" in info.output
    restored = json_out(
        run(
            wrangler,
            "d1",
            "time-travel",
            "restore",
            "history",
            f"--timestamp={moment}",
            "--json",
            cwd=work,
        )
    )
    assert restored["previous_bookmark"] == current
    assert names(database) == ["a"]
    run(
        wrangler,
        "d1",
        "time-travel",
        "restore",
        "history",
        f"--bookmark={current}",
        "--json",
        cwd=work,
    )
    assert names(database) == ["a", "b"]

    # Queue event subscriptions, and a KV event delivered.
    run(wrangler, "queues", "create", "events", cwd=work)
    run(
        wrangler,
        "queues",
        "subscription",
        "create",
        "events",
        "--source",
        "kv",
        "--events",
        "namespace.created,namespace.deleted",
        "--name",
        "kv-events",
        cwd=work,
    )
    subscription = EventSubscription.objects.get()
    assert subscription.events == ["namespace.created", "namespace.deleted"]
    listed = run(
        wrangler, "queues", "subscription", "list", "events", "--json", cwd=work
    )
    assert [s["id"] for s in json_out(listed)] == [subscription.id]
    got = run(
        wrangler,
        "queues",
        "subscription",
        "get",
        "events",
        "--id",
        subscription.id,
        "--json",
        cwd=work,
    )
    assert json_out(got)["name"] == "kv-events"
    run(
        wrangler,
        "queues",
        "subscription",
        "update",
        "events",
        "--id",
        subscription.id,
        "--name",
        "renamed",
        cwd=work,
    )
    subscription.refresh_from_db()
    assert subscription.name == "renamed"
    refused = wrangler(
        "queues",
        "subscription",
        "create",
        "events",
        "--source",
        "workersAi.model",
        "--model-name",
        "m",
        "--events",
        "x",
        T,
        cwd=work,
    )
    assert refused.returncode != 0
    assert "is not available on temporary accounts" in refused.output
    run(wrangler, "kv", "namespace", "create", "watched", cwd=work)
    [message] = QueueMessage.objects.filter(queue=subscription.queue)
    assert json.loads(bytes(message.body))["type"] == "cf.kv.namespace.created"
    run(
        wrangler,
        "queues",
        "subscription",
        "delete",
        "events",
        "--id",
        subscription.id,
        "--force",
        cwd=work,
    )
    assert not EventSubscription.objects.exists()

    # delete: the Worker (which has a Durable Object class) goes, quietly.
    run(wrangler, "deploy", cwd=work)
    assert WorkerScript.objects.exists()
    deleted = run(wrangler, "delete", "--force", cwd=work)
    assert "keep running and billing" not in deleted.output
    assert "Container" not in deleted.output
    assert not WorkerScript.objects.exists()
