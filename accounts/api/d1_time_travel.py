"""D1 time travel (``wrangler d1 time-travel info | restore``): bookmarks and
restores, as Cloudflare's ``/time_travel/bookmark`` and ``/time_travel/restore``."""

from django.http import HttpResponse
from django.utils import timezone

from accounts.exceptions import InvalidInput
from accounts.services import d1, d1_time_travel

from . import envelope
from .kit import ApiRequest, endpoint


def _bookmark(request: ApiRequest, account_id: str, database_id: str) -> HttpResponse:
    database = d1.get_database(account=request.cloud_account, id_or_name=database_id)
    raw = request.GET.get("timestamp", "")
    bookmark = d1_time_travel.bookmark_at(
        database=database,
        timestamp=d1_time_travel.parse_timestamp(raw) if raw else None,
        now=timezone.now(),
    )
    return envelope.success({"bookmark": bookmark})


def _restore(request: ApiRequest, account_id: str, database_id: str) -> HttpResponse:
    database = d1.get_database(account=request.cloud_account, id_or_name=database_id)
    bookmark, raw = request.GET.get("bookmark", ""), request.GET.get("timestamp", "")
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
