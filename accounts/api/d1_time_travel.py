"""D1 time travel (``wrangler d1 time-travel info | restore``): bookmarks and
restores, as Cloudflare's ``/time_travel/bookmark`` and ``/time_travel/restore``."""

from django.http import HttpResponse
from django.utils import timezone

from accounts.exceptions import InvalidInput
from accounts.services import d1, d1_time_travel

from . import envelope
from .inputs import Query, Text
from .kit import ApiRequest, endpoint, operation

TAG = "d1"


class Moment(Query):
    timestamp = Text(
        blank=True, max_length=64, default="", description="RFC 3339 or Unix seconds."
    )


class RestorePoint(Moment):
    bookmark = Text(
        blank=True, max_length=128, default="", description="From /bookmark."
    )


@operation(
    "The bookmark of the state at the start of timestamp's minute (the current "
    "state without one).",
    tag=TAG,
    query=Moment,
    result={"type": "object", "properties": {"bookmark": {"type": "string"}}},
)
def _bookmark(
    request: ApiRequest, account_id: str, database_id: str, *, query: Moment
) -> HttpResponse:
    database = d1.get_database(account=request.cloud_account, id_or_name=database_id)
    raw = query.timestamp
    bookmark = d1_time_travel.bookmark_at(
        database=database,
        timestamp=d1_time_travel.parse_timestamp(raw) if raw else None,
        now=timezone.now(),
    )
    return envelope.success({"bookmark": bookmark})


@operation(
    "Restore the database, in one transaction, to a bookmark or to the start of "
    "a timestamp's minute; previous_bookmark undoes it.",
    tag=TAG,
    query=RestorePoint,
    result={
        "type": "object",
        "properties": {
            "bookmark": {"type": "string"},
            "previous_bookmark": {"type": "string"},
            "message": {"type": "string"},
        },
    },
)
def _restore(
    request: ApiRequest, account_id: str, database_id: str, *, query: RestorePoint
) -> HttpResponse:
    database = d1.get_database(account=request.cloud_account, id_or_name=database_id)
    bookmark, raw = query.bookmark, query.timestamp
    now = timezone.now()
    if bool(bookmark) == bool(raw):
        raise InvalidInput("Send either 'bookmark' or 'timestamp'.")
    if raw:
        bookmark = d1_time_travel.bookmark_at(
            database=database,
            timestamp=d1_time_travel.parse_timestamp(raw),
            now=now,
        )
    return envelope.success(
        d1_time_travel.restore(database=database, bookmark=bookmark, now=now)
    )


bookmark = endpoint()({"GET": _bookmark})
restore = endpoint()({"POST": _restore})
