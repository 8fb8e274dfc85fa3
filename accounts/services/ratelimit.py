"""Fixed-window request counters in the shared cache (Redis), so every web
process counts against the same budget.

While the cache is unreachable, limits fail open: nothing is counted and every
request passes, so an outage of Redis never takes pages or the API down with
it. (Proof-of-work tokens, which need the cache to be single-use, do not.)"""

import contextlib
import logging
import math
from collections.abc import Sequence
from datetime import datetime

from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache

from accounts.exceptions import RateLimited
from claimportal.cache import CACHE_DOWN

logger = logging.getLogger(__name__)


def _window(window: int, now: datetime) -> tuple[int, int]:
    """The current window's start (Unix seconds) and the seconds until it ends."""
    start = int(now.timestamp()) // window * window
    return start, max(math.ceil(start + window - now.timestamp()), 1)


def _key(bucket: str, window: int, start: int) -> str:
    return f"rl:{bucket}:{window}:{start}"


def _count_portably(backend: BaseCache, key: str, timeout: int) -> int:
    try:
        return backend.incr(key)
    except ValueError:
        # The window's first request; if another process got there first,
        # add() refuses and the counter exists to be incremented.
        return 1 if backend.add(key, 1, timeout=timeout) else backend.incr(key)


def count_requests(
    *, buckets: Sequence[str], window: int, now: datetime
) -> tuple[list[int], int]:
    """Count one request in each bucket's current window of ``window`` seconds.

    Returns the counts so far in this window, in order, and the seconds until
    the window ends.
    """
    start, seconds_left = _window(window, now)
    try:
        return _count(buckets, window, start, seconds_left), seconds_left
    except CACHE_DOWN:
        logger.warning("rate limits are off: the cache is unreachable")
        return [0] * len(buckets), seconds_left


def _count(
    buckets: Sequence[str], window: int, start: int, seconds_left: int
) -> list[int]:
    backend = caches["default"]
    keys = [_key(bucket, window, start) for bucket in buckets]
    if not isinstance(backend, RedisCache):
        return [_count_portably(backend, k, seconds_left + 1) for k in keys]
    # Redis: every counter in one round trip (INCR, then a TTL if it has none).
    client = backend._cache.get_client(write=True)
    pipeline = client.pipeline(transaction=False)
    for key in keys:
        stored = backend.make_and_validate_key(key)
        pipeline.incr(stored)
        pipeline.expire(stored, seconds_left + 1, nx=True)
    return pipeline.execute()[::2]


def uncount_request(*, bucket: str, window: int, now: datetime) -> None:
    """Take back one request counted in ``bucket``'s current window."""
    start, _ = _window(window, now)
    # A counter already gone went with its window: nothing to take back.
    with contextlib.suppress(ValueError, *CACHE_DOWN):
        caches["default"].decr(_key(bucket, window, start))


def enforce_rate_limit(
    *, bucket: str, limit: int, window: int, now: datetime, message: str
) -> None:
    """Count one request in ``bucket``; past ``limit`` in the window, raise
    RateLimited with the seconds to wait."""
    (count,), seconds_left = count_requests(buckets=[bucket], window=window, now=now)
    if count > limit:
        raise RateLimited(message, retry_after=seconds_left)
