"""Counting semaphores in the shared cache: at most N holders of a name at once,
across every web process.

A slot is one cache key taken with add() (atomic in Redis), so it needs no
script, and one left behind by a killed process frees itself when its timeout
ends. Hold a slot only for work bounded in time, and choose the timeout above
that bound. While Redis is unreachable the default cache fails open, and so do
these limits.
"""

import math
import secrets
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from django.core.cache import caches


@contextmanager
def slot(*, name: str, limit: int, seconds: int) -> Iterator[bool]:
    """Take one of ``limit`` slots of ``name`` for the body; yields whether one
    was free (the caller refuses when not). Freed on leaving the body, or after
    ``seconds`` whatever happens."""
    cache = caches["default"]
    holder = secrets.token_hex(8)
    taken = next(
        (
            key
            for key in (f"slot:{name}:{index}" for index in range(limit))
            if cache.add(key, holder, timeout=seconds)
        ),
        None,
    )
    try:
        yield taken is not None
    finally:
        # Only our own: a slot that timed out may be someone else's by now.
        if taken is not None and cache.get(taken) == holder:
            cache.delete(taken)


def account_slot(
    *, account_id: str, purpose: str, limit: int, ttl: float
) -> AbstractContextManager[bool]:
    """One of ``limit`` places for ``account_id``'s ``purpose`` (a ``slot``)."""
    return slot(name=f"{purpose}:{account_id}", limit=limit, seconds=math.ceil(ttl))
