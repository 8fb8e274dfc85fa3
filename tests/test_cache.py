"""The Redis caches: one redis-py client per process, shared by its threads."""

import uuid

from django.core.cache import caches

from tests.conftest import run_concurrently


def test_threads_share_one_client_and_every_increment_counts():
    cache = caches["default"]
    key = f"shared-counter-{uuid.uuid4().hex}"
    cache.set(key, 0)

    def count_a_hundred() -> object:
        for _ in range(100):
            cache.incr(key)
        return cache._cache.get_client(key, write=True)

    clients = run_concurrently(count_a_hundred, times=8)

    assert cache.get(key) == 800
    assert len({id(client) for client in clients}) == 1
    cache.delete(key)
