"""How many of one account's things may run at once, across processes.

A place is a key in the shared cache (Redis), taken with ``add`` and given back
when done; it expires after ``ttl`` seconds, so a process killed while holding
one cannot keep it.
"""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.cache import cache


@contextmanager
def account_slot(
    *, account_id: str, purpose: str, limit: int, ttl: float
) -> Iterator[bool]:
    """Take one of ``limit`` places for ``account_id``'s ``purpose``; yields
    whether one was free (never waits)."""
    for index in range(limit):
        key = f"slot:{purpose}:{account_id}:{index}"
        holder = uuid.uuid4().hex
        if cache.add(key, holder, timeout=ttl):
            try:
                yield True
            finally:
                if cache.get(key) == holder:  # not expired and retaken meanwhile
                    cache.delete(key)
            return
    yield False
