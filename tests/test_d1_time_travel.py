"""D1 time travel over client/v4: bookmarks, restores by bookmark and timestamp,
undo, the window, atomic failure, and the copies gone with the database.

Time passing is played by the file system: a write's time is its file's
modification time, so setting it back makes that write minutes old, exactly as
if the test had waited.
"""

import os
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from accounts.models import D1Database
from tests.cloudapi import AccountClient, error_code, ok

pytestmark = pytest.mark.django_db

DB = "d1/database"


@pytest.fixture
def api(client, provision) -> AccountClient:
    return AccountClient(client, provision())


@pytest.fixture
def db(api) -> dict:
    made = ok(api.post(DB, {"name": "history"}))
    # A database made ten minutes ago, so there is a past to travel to.
    D1Database.objects.filter(uuid=made["uuid"]).update(
        created_at=datetime.now(UTC) - timedelta(minutes=10)
    )
    return made


def sql(api, db, text):
    return ok(api.post(f"{DB}/{db['uuid']}/query", {"sql": text}))[-1]["results"]


def names(api, db) -> list[str]:
    return [r["name"] for r in sql(api, db, "SELECT name FROM notes ORDER BY id")]


def age_last_write(db, moment: datetime) -> None:
    path = default_storage.path(D1Database.objects.get(uuid=db["uuid"]).storage_name)
    os.utime(path, (moment.timestamp(), moment.timestamp()))


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def minute() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


@pytest.fixture
def history(api, db, minute) -> dict[str, datetime]:
    """Rows written 3 and 2 minutes ago, and one now."""
    sql(api, db, "CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, name)")
    sql(api, db, "INSERT INTO notes (name) VALUES ('a')")
    age_last_write(db, minute - timedelta(minutes=3) + timedelta(seconds=1))
    sql(api, db, "INSERT INTO notes (name) VALUES ('b')")
    age_last_write(db, minute - timedelta(minutes=2) + timedelta(seconds=1))
    sql(api, db, "INSERT INTO notes (name) VALUES ('c')")
    sql(api, db, "CREATE INDEX notes_name ON notes (name)")
    return {"a": minute - timedelta(minutes=2), "ab": minute - timedelta(minutes=1)}


def bookmark(api, db, moment: datetime | None = None) -> str:
    query = f"?timestamp={iso(moment)}" if moment else ""
    return ok(api.get(f"{DB}/{db['uuid']}/time_travel/bookmark{query}"))["bookmark"]


def restore(api, db, query: str):
    return api.post(f"{DB}/{db['uuid']}/time_travel/restore?{query}")


def test_restore_by_timestamp_to_the_start_of_its_minute_and_undo(api, db, history):
    assert names(api, db) == ["a", "b", "c"]
    current = bookmark(api, db)
    # Any moment of a minute brings back the rows as that minute began.
    half_past = history["ab"] + timedelta(seconds=30)
    result = ok(restore(api, db, f"timestamp={iso(half_past)}"))
    assert names(api, db) == ["a", "b"]
    assert result["bookmark"] == bookmark(api, db, history["ab"])
    assert result["previous_bookmark"] == current

    ok(restore(api, db, f"bookmark={bookmark(api, db, history['a'])}"))
    assert names(api, db) == ["a"]
    # The AUTOINCREMENT counter came back too: the next id is 2, not 4.
    sql(api, db, "INSERT INTO notes (name) VALUES ('z')")
    assert sql(api, db, "SELECT max(id) AS id FROM notes")[0]["id"] == 2

    # Undo: the state before the first restore, index included.
    ok(restore(api, db, f"bookmark={result['previous_bookmark']}"))
    assert names(api, db) == ["a", "b", "c"]
    indexes = sql(api, db, "SELECT name FROM sqlite_schema WHERE type = 'index'")
    assert {"name": "notes_name"} in indexes


def test_before_the_first_write_is_the_empty_database(api, db, history):
    ok(restore(api, db, f"timestamp={iso(history['a'] - timedelta(minutes=5))}"))
    tables = sql(
        api,
        db,
        "SELECT name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'",
    )
    assert tables == []
    assert D1Database.objects.get(uuid=db["uuid"]).table_count == 0


def test_moments_outside_the_window_and_foreign_bookmarks_are_refused(
    api, db, history, settings
):
    before_creation = datetime.now(UTC) - timedelta(hours=1)
    refused = restore(api, db, f"timestamp={iso(before_creation)}")
    assert refused.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(refused) == 7520
    assert "reaches back to" in refused.json()["errors"][0]["message"]
    future = api.get(
        f"{DB}/{db['uuid']}/time_travel/bookmark"
        f"?timestamp={iso(datetime.now(UTC) + timedelta(hours=1))}"
    )
    assert error_code(future) == 7520

    other = ok(api.post(DB, {"name": "other"}))
    foreign = bookmark(api, other)
    assert error_code(restore(api, db, f"bookmark={foreign}")) == 7521
    assert error_code(restore(api, db, "bookmark=nonsense")) == 7521
    assert error_code(restore(api, db, "")) == 10001
    assert names(api, db) == ["a", "b", "c"]


def test_a_restore_that_fails_changes_nothing(api, db, history, settings):
    copies = sorted(
        Path(settings.MEDIA_ROOT).rglob("d1-time-travel/*/*.sqlite3"),
        key=lambda p: int(p.stem),
    )
    assert len(copies) == 2  # one per minute that saw writes, not one per write
    copies[0].write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)  # damaged
    failed = restore(api, db, f"timestamp={iso(history['a'])}")
    assert failed.status_code == HTTPStatus.BAD_REQUEST
    assert "unchanged" in failed.json()["errors"][0]["message"]
    assert names(api, db) == ["a", "b", "c"]


def test_deleting_the_database_deletes_its_history(
    api, db, history, settings, django_capture_on_commit_callbacks
):
    assert list(Path(settings.MEDIA_ROOT).rglob("d1-time-travel/*/*.sqlite3"))
    with django_capture_on_commit_callbacks(execute=True):
        ok(api.delete(f"{DB}/{db['uuid']}"))
    assert [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()] == []
