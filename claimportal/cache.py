"""A Redis cache that answers like an empty one while Redis is unreachable.

Rate limits (ours and allauth's) are counters in the default cache; with this
backend they fail open, so sign-in, claim pages and the API stay up through a
Redis outage. Whatever must be right or refused (a proof-of-work token has to
stay single-use) uses the plain "strict" alias instead and fails closed.
"""

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.core.cache.backends.redis import RedisCache
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
