"""D1 metrics: per database, per hour and per SQL text, the queries run, rows
read, written and returned, and time spent; what D1's analytics report.

One upsert per call (all its statements in one statement batch), counted after
the call committed; a failure to count never fails the query.
"""

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime

from django.db import DatabaseError, connection, transaction
from django.db.models import QuerySet

from accounts.models import D1Database, D1QueryStats

logger = logging.getLogger("claimportal.d1")
# Short enough for a unique index on PostgreSQL whatever the characters.
MAX_QUERY_CHARS = 600


def record(
    *, database: D1Database, statements: Iterable[tuple[str, dict]], now: datetime
) -> None:
    """Count each (SQL text, result meta) of a call in ``now``'s hour."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    table = connection.ops.quote_name(D1QueryStats._meta.db_table)
    columns = (
        "database_id, hour, query, count, read_queries, write_queries, rows_read,"
        " rows_written, rows_returned, duration_ms"
    )
    increments = ", ".join(
        f"{c} = {table}.{c} + excluded.{c}"
        for c in (
            "count",
            "read_queries",
            "write_queries",
            "rows_read",
            "rows_written",
            "rows_returned",
            "duration_ms",
        )
    )
    sql = (
        f"INSERT INTO {table} ({columns}) VALUES "  # noqa: S608 (quoted names)
        "(%s, %s, %s, 1, %s, %s, %s, %s, %s, %s)"
        f" ON CONFLICT (database_id, hour, query) DO UPDATE SET {increments}"
    )
    rows = []
    for text, meta in statements:
        wrote = bool(meta.get("changed_db") or meta.get("rows_written"))
        rows.append(
            [
                database.pk,
                hour,
                text[:MAX_QUERY_CHARS],
                0 if wrote else 1,
                1 if wrote else 0,
                meta.get("rows_read", 0),
                meta.get("rows_written", 0),
                meta.get("rows_returned", 0),
                meta.get("duration", 0.0),
            ]
        )
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(sql, rows)
    except DatabaseError:
        logger.exception("D1 metrics of %s not recorded", database.pk)


def stats(
    *, account_id: str, since: datetime, until: datetime, database_id: str = ""
) -> QuerySet[D1QueryStats]:
    rows = D1QueryStats.objects.filter(
        database__account_id=account_id, hour__gte=since, hour__lte=until
    )
    if not database_id:
        return rows
    try:
        wanted = uuid.UUID(database_id)
    except ValueError:
        return rows.none()  # no database has an id that is no UUID
    return rows.filter(database_id=wanted)


def totals(*, database: D1Database, since: datetime) -> dict[str, float]:
    """The figures the owner's account page shows for one database."""
    found = {"queries": 0, "rows_read": 0, "rows_written": 0, "duration_ms": 0.0}
    for row in database.query_stats.filter(hour__gte=since):
        found["queries"] += row.count
        found["rows_read"] += row.rows_read
        found["rows_written"] += row.rows_written
        found["duration_ms"] += row.duration_ms
    return found
