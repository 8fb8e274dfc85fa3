"""Redis caches: one that reuses its redis-py client, and one that also answers
like an empty cache while Redis is unreachable.

Rate limits (ours and allauth's) are counters in the default cache; with this
backend they fail open, so sign-in, claim pages and the API stay up through a
Redis outage. Whatever must be right or refused (a proof-of-work token has to
stay single-use) uses the plain "strict" alias instead and fails closed.
"""

import functools
import logging
from collections.abc import Callable
from typing import Any

import redis
from django.core.cache.backends import redis as django_redis
from django.db import transaction
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# What a cache that cannot be reached raises: redis-py's errors, or the OS's.
CACHE_DOWN = (RedisError, OSError)


def _when_unreachable(answer: Callable[..., Any]) -> Callable:
    def decorate(method: Callable) -> Callable:
        @functools.wraps(method)
        def guarded(self, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except CACHE_DOWN:
                logger.warning(
                    "cache unreachable: %s answered as empty", method.__name__
                )
                return answer(*args, **kwargs)

        return guarded

    return decorate


class _ReusedClient(django_redis.RedisCacheClient):
    """Django makes a redis.Redis for every operation, and building one (its
    table of response callbacks) costs more than the round trip itself. A
    client is thread-safe and takes connections from its pool, so one per pool
    serves every thread."""

    # Django's own members this builds on; its stubs describe the public ones only.
    _client: Callable[..., redis.Redis]
    _get_connection_pool_index: Callable[[bool], int]
    _get_connection_pool: Callable[[bool], redis.ConnectionPool]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, redis.Redis] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> redis.Redis:
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            pool = self._get_connection_pool(write)
            client = self._clients.setdefault(index, self._client(connection_pool=pool))
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = _ReusedClient


def now_and_after_commit(invalidate: Callable[[], None]) -> None:
    """Invalidate what the cache holds about rows this transaction changes: now,
    so this request's next read is fresh, and again once it commits, since a
    reader in between read the rows as they were and may have kept them."""
    invalidate()
    transaction.on_commit(invalidate, robust=True)


def _missing_key(*args: Any, **kwargs: Any) -> None:
    raise ValueError("Key not found (the cache is unreachable).")


class FailOpenRedisCache(RedisCache):
    # add() says "stored": a lock taken on an empty cache is the caller's.
    add = _when_unreachable(lambda *a, **k: True)(RedisCache.add)
    get = _when_unreachable(lambda key, default=None, **k: default)(RedisCache.get)
    set = _when_unreachable(lambda *a, **k: None)(RedisCache.set)
    touch = _when_unreachable(lambda *a, **k: False)(RedisCache.touch)
    delete = _when_unreachable(lambda *a, **k: False)(RedisCache.delete)
    get_many = _when_unreachable(lambda *a, **k: {})(RedisCache.get_many)
    has_key = _when_unreachable(lambda *a, **k: False)(RedisCache.has_key)
    incr = _when_unreachable(_missing_key)(RedisCache.incr)
    set_many = _when_unreachable(lambda *a, **k: [])(RedisCache.set_many)
    delete_many = _when_unreachable(lambda *a, **k: None)(RedisCache.delete_many)
