"""Fixed-window request counters in the shared cache (Redis), so every web
process counts against the same budget."""

import math
from datetime import datetime

from django.core.cache import cache

from accounts.exceptions import RateLimited


def count_request(*, bucket: str, window: int, now: datetime) -> tuple[int, int]:
    """Count one request in ``bucket``'s current window of ``window`` seconds.

    Returns the count so far in this window and the seconds until it ends.
    """
    start = int(now.timestamp()) // window * window
    key = f"rl:{bucket}:{window}:{start}"
    seconds_left = max(math.ceil(start + window - now.timestamp()), 1)
    try:
        count = cache.incr(key)
    except ValueError:
        # The window's first request; if another process got there first,
        # add() refuses and the counter exists to be incremented.
        count = 1 if cache.add(key, 1, timeout=seconds_left + 1) else cache.incr(key)
    return count, seconds_left


def enforce_rate_limit(
    *, bucket: str, limit: int, window: int, now: datetime, message: str
) -> None:
    """Raise RateLimited (with the seconds to wait) past ``limit`` a window."""
    count, seconds_left = count_request(bucket=bucket, window=window, now=now)
    if count > limit:
        raise RateLimited(message, retry_after=seconds_left)
