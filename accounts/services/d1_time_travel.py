"""D1 time travel: bookmarks, and restoring a database to any minute of the window.

Design: copy-on-write, one copy per minute at most. A database's history is a
list of *states*, each valid from the moment a write committed (the live file's
modification time) until the next write. Before the first statement of a call
made in a later minute than the last write, the live file (still unchanged,
under SQLite's write lock) is copied to ``d1-time-travel/<uuid>/<ms>.sqlite3``,
named by the time it became valid. So the state at the start of every minute is
kept, at the cost of one file copy per minute that saw writes (never per query,
and nothing on reads of an unchanged database), and no change log to replay.

A timestamp is rounded down to its minute: ``restore --timestamp T`` brings back
the database as it was when T's minute began. A bookmark names one state exactly.
A restore copies the state back in one SQLite transaction (readers see the old
rows or the new ones, never a mix) after keeping the state it replaces, which is
the ``previous_bookmark`` that undoes it. The copies live under the account's
storage prefix, so deleting the database or purging the account deletes them.
"""

import os
import re
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.core.files.storage import default_storage

from accounts.exceptions import BookmarkInvalid, TimeTravelOutOfWindow
from accounts.models import D1Database, account_storage_prefix
from accounts.services.validation import clean_text

BOOKMARK_PATTERN = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{8})$")
EMPTY = ""  # the state of a new database: no file content to copy back


@dataclass(frozen=True)
class State:
    valid_from_ms: int
    path: str  # a copy of the database file, or EMPTY


def folder(database: D1Database) -> str:
    """The storage folder of a database's copies (under its account's prefix)."""
    prefix = account_storage_prefix(database.account_id)
    return f"{prefix}/d1-time-travel/{database.uuid}"


def bookmark_for(*, database: D1Database, valid_from_ms: int) -> str:
    return f"{valid_from_ms:016x}-{database.uuid.hex[:8]}"


def _live_path(database: D1Database) -> str:
    return default_storage.path(database.storage_name)


def _modified_ms(path: str) -> int:
    return os.stat(path).st_mtime_ns // 1_000_000


def _minute(ms: int) -> int:
    return ms // 60_000


def _created_ms(database: D1Database) -> int:
    return int(database.created_at.timestamp() * 1000)


def keep_state(*, database: D1Database, now: datetime) -> None:
    """Copy the live file if it holds a state that a later write would lose.

    Called by ``d1`` under SQLite's write lock, before any statement of a call:
    the file is the committed state and nobody can change it meanwhile.
    """
    live = _live_path(database)
    valid_from = _modified_ms(live)
    if _minute(valid_from) >= _minute(int(now.timestamp() * 1000)):
        return  # the minute's first state is already kept (or is the live one)
    if _keep_copy(database, live, valid_from):
        _prune(database=database, now=now)


def _keep_copy(database: D1Database, live: str, valid_from: int) -> bool:
    """Copy the live file as the state valid from ``valid_from``, unless it is
    kept already or is the empty state every database starts from."""
    target = Path(default_storage.path(folder(database))) / f"{valid_from}.sqlite3"
    if target.exists() or os.path.getsize(live) == 0:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    shutil.copyfile(live, partial)
    os.replace(partial, target)  # a copy is whole or absent
    return True


def _states(database: D1Database) -> list[State]:
    """Every kept state, oldest first: the empty one, the copies, the live file."""
    states = [State(valid_from_ms=_created_ms(database), path=EMPTY)]
    base = Path(default_storage.path(folder(database)))
    if base.is_dir():
        for entry in base.glob("*.sqlite3"):
            if entry.stem.isdigit():
                states.append(State(valid_from_ms=int(entry.stem), path=str(entry)))
    live = _live_path(database)
    states.append(State(valid_from_ms=_modified_ms(live), path=live))
    return sorted(states, key=lambda state: state.valid_from_ms)


def _prune(*, database: D1Database, now: datetime) -> None:
    """Drop copies no restore can reach: all but the newest one older than the
    window (which still holds the state at the window's start)."""
    cutoff = int((now - settings.CLAIMPORTAL_D1_TIME_TRAVEL).timestamp() * 1000)
    old = [s for s in _states(database)[:-1] if s.path and s.valid_from_ms < cutoff]
    for state in old[:-1]:
        Path(state.path).unlink(missing_ok=True)


def _state_at(database: D1Database, at_ms: int) -> State:
    candidates = [s for s in _states(database) if s.valid_from_ms <= at_ms]
    return candidates[-1] if candidates else _states(database)[0]


def _check_window(*, database: D1Database, at: datetime, now: datetime) -> None:
    earliest = now - settings.CLAIMPORTAL_D1_TIME_TRAVEL
    created_minute = database.created_at.replace(second=0, microsecond=0)
    if at > now:
        raise TimeTravelOutOfWindow("That moment is in the future.")
    if at < earliest or at < created_minute:
        since = max(earliest, created_minute).isoformat().replace("+00:00", "Z")
        raise TimeTravelOutOfWindow(
            f"Time travel reaches back to {since} for this database "
            "(its creation, or the retention window)."
        )


def parse_timestamp(value: str) -> datetime:
    """An RFC 3339 timestamp (what wrangler sends) or Unix seconds, in UTC."""
    value = clean_text(value, field="timestamp", max_length=64)
    try:
        if value.isdigit():
            return datetime.fromtimestamp(int(value), tz=UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError) as exc:
        raise TimeTravelOutOfWindow(
            "'timestamp' must be an RFC 3339 time or Unix seconds."
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def bookmark_at(
    *, database: D1Database, timestamp: datetime | None, now: datetime
) -> str:
    """The bookmark of the state at the start of ``timestamp``'s minute (the
    current state without one). Raises TimeTravelOutOfWindow."""
    if timestamp is None:
        state = _states(database)[-1]
    else:
        _check_window(database=database, at=timestamp, now=now)
        minute = timestamp.replace(second=0, microsecond=0)
        at_ms = max(int(minute.timestamp() * 1000), _created_ms(database))
        state = _state_at(database, at_ms)
    return bookmark_for(database=database, valid_from_ms=state.valid_from_ms)


def _parse_bookmark(*, database: D1Database, bookmark: str) -> int:
    text = clean_text(bookmark, field="bookmark", max_length=64)
    match = BOOKMARK_PATTERN.match(text)
    if not match or match.group(2) != database.uuid.hex[:8]:
        raise BookmarkInvalid()
    return int(match.group(1), 16)


def restore(*, database: D1Database, bookmark: str, now: datetime) -> dict[str, str]:
    """Bring ``database`` back to the state ``bookmark`` names, in one transaction.

    Returns Cloudflare's answer: the bookmark restored to, the one that undoes
    it, and a message. Raises BookmarkInvalid, TimeTravelOutOfWindow,
    DatabaseNotFound, QueryError.
    """
    from accounts.services import d1  # d1 calls keep_state: import late

    at_ms = _parse_bookmark(database=database, bookmark=bookmark)
    _check_window(
        database=database,
        at=datetime.fromtimestamp(at_ms / 1000, tz=UTC),
        now=now,
    )
    live = _live_path(database)
    with d1.write_lock(database) as conn:
        previous = _modified_ms(live)
        _keep_copy(database, live, previous)  # what previous_bookmark restores
        state = _state_at(database, at_ms)
        if state.path != live:
            try:
                _replace_contents(conn, state.path)
            except sqlite3.Error as exc:  # rolled back by write_lock
                raise d1.QueryError(
                    f"The database could not be restored ({exc}); it is unchanged."
                ) from exc
    return {
        "bookmark": bookmark_for(database=database, valid_from_ms=state.valid_from_ms),
        "previous_bookmark": bookmark_for(database=database, valid_from_ms=previous),
        "message": f"Database restored to the state of {_iso(state.valid_from_ms)}.",
    }


def _iso(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _replace_contents(conn: sqlite3.Connection, source: str) -> None:
    """Make the open transaction's database hold what ``source`` holds (nothing
    for EMPTY): drop every object, recreate the schema, copy the rows."""
    for kind, name in conn.execute(
        "SELECT type, name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' "
        "AND type IN ('view', 'trigger', 'table') ORDER BY type = 'table'"
    ).fetchall():
        conn.execute(f"DROP {kind.upper()} IF EXISTS {_quoted(name)}")
    if _has_sequence(conn, "main"):
        conn.execute("DELETE FROM main.sqlite_sequence")
    if source == EMPTY:
        return
    # Attached for the rest of the transaction: SQLite cannot detach a database
    # inside one, and the connection is closed right after the commit.
    conn.execute("ATTACH DATABASE ? AS snapshot", [f"file:{quote(source)}?mode=ro"])
    schema = conn.execute(
        "SELECT type, name, sql FROM snapshot.sqlite_schema WHERE sql IS NOT NULL"
        " AND name NOT LIKE 'sqlite_%' ORDER BY type != 'table', rowid"
    ).fetchall()
    for kind, name, sql in schema:
        conn.execute(sql)
        if kind == "table":
            quoted = _quoted(name)
            conn.execute(
                f"INSERT INTO main.{quoted} SELECT * FROM snapshot.{quoted}"  # noqa: S608
            )
    if _has_sequence(conn, "snapshot"):
        conn.execute(
            "INSERT INTO main.sqlite_sequence SELECT * FROM snapshot.sqlite_sequence"
        )


def _has_sequence(conn: sqlite3.Connection, schema: str) -> bool:
    return bool(
        conn.execute(
            f"SELECT 1 FROM {schema}.sqlite_schema WHERE name = 'sqlite_sequence'"  # noqa: S608
        ).fetchone()
    )


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
