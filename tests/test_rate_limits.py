"""Abuse limits on the provisioning calls: per-client and global rate limits in
the shared cache, and the admin-managed blocklist."""

import secrets
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.test import Client

from accounts import tokens
from accounts.exceptions import RateLimited
from accounts.models import BlockedOrigin, CloudAccount
from accounts.services.provisioning import origin_hash_key
from accounts.services.ratelimit import (
    count_requests,
    enforce_rate_limit,
    uncount_request,
)
from tests.conftest import run_concurrently
from tests.test_provisioning_api import Agent, error_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def limits(settings):
    """Small limits in a window of their own: counters live in a cache that
    other tests (and other test processes) share, keyed by window length."""

    def set_limits(*, per_ip: int = 1000, overall: int = 100_000) -> None:
        settings.CLAIMPORTAL_RATE_LIMIT_PER_IP = per_ip
        settings.CLAIMPORTAL_RATE_LIMIT_GLOBAL = overall
        settings.CLAIMPORTAL_RATE_LIMIT_WINDOW_SECONDS = 10_000 + secrets.randbelow(
            50_000
        )

    return set_limits


def test_counters_count_within_a_window_and_start_over_after_it(now):
    a, b = f"test:{secrets.token_hex(8)}", f"test:{secrets.token_hex(8)}"
    counts = [count_requests(buckets=[a, b], window=60, now=now)[0] for _ in range(3)]
    assert counts == [[1, 1], [2, 2], [3, 3]]
    uncount_request(bucket=b, window=60, now=now)
    assert count_requests(buckets=[b], window=60, now=now)[0] == [3]
    later, seconds_left = count_requests(
        buckets=[a], window=60, now=now + timedelta(seconds=60)
    )
    assert later == [1]
    assert 1 <= seconds_left <= 60


def test_enforcing_a_limit_says_how_long_to_wait(now):
    bucket = f"test:{secrets.token_hex(8)}"
    for _ in range(2):
        enforce_rate_limit(bucket=bucket, limit=2, window=60, now=now, message="m")
    with pytest.raises(RateLimited) as limited:
        enforce_rate_limit(bucket=bucket, limit=2, window=60, now=now, message="slow")
    assert limited.value.message == "slow"
    assert 1 <= limited.value.retry_after <= 60


def test_counters_work_on_a_cache_other_than_redis(now, settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    }
    bucket = f"test:{secrets.token_hex(8)}"
    counts = [count_requests(buckets=[bucket], window=60, now=now)[0] for _ in range(2)]
    assert counts == [[1], [2]]


@pytest.mark.parametrize("call", ["/challenge", ""])
def test_one_client_is_limited_with_429_and_retry_after(client, limits, call):
    limits(per_ip=3)
    agent = Agent(client)
    statuses = [agent.post(call, {}).status_code for _ in range(4)]
    # The previews call refuses an empty body, but still counts it.
    assert statuses[3] == HTTPStatus.TOO_MANY_REQUESTS
    assert HTTPStatus.TOO_MANY_REQUESTS not in statuses[:3]
    limited = agent.post(call, {})
    status, code, message = error_of(limited)
    assert (status, code) == (HTTPStatus.TOO_MANY_REQUESTS, 10429)
    assert "your network" in message
    assert 1 <= int(limited["Retry-After"]) <= 60_000
    # Another client is not affected.
    assert Agent(client).post("/challenge").status_code == HTTPStatus.OK


def test_a_limited_client_cannot_provision(client, limits):
    limits(per_ip=1)  # one challenge, one previews call
    agent = Agent(client)
    body = agent.solved()
    assert agent.post("", body).status_code == HTTPStatus.OK
    assert agent.post("/challenge").status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert CloudAccount.objects.count() == 1


def test_ipv6_clients_are_counted_by_their_64(client, limits):
    limits(per_ip=2)
    prefix = f"2001:db8:{secrets.randbelow(0xFFFF):x}:{secrets.randbelow(0xFFFF):x}"
    for host in ("::1", "::2"):
        ok = Agent(client, ip=prefix + host).post("/challenge")
        assert ok.status_code == HTTPStatus.OK
    same_64 = Agent(client, ip=prefix + "::3").post("/challenge")
    assert same_64.status_code == HTTPStatus.TOO_MANY_REQUESTS
    other_64 = Agent(client, ip=prefix.rsplit(":", 1)[0] + ":ffff::1")
    assert other_64.post("/challenge").status_code == HTTPStatus.OK


def test_the_global_limit_holds_whoever_asks(client, limits):
    limits(overall=3)
    statuses = [Agent(client).post("/challenge").status_code for _ in range(4)]
    assert statuses == [HTTPStatus.OK] * 3 + [HTTPStatus.TOO_MANY_REQUESTS]
    message = error_of(Agent(client).post("/challenge"))[2]
    assert "Too many temporary accounts" in message


def test_a_flooding_client_does_not_use_up_everyones_budget(client, limits):
    limits(per_ip=1, overall=3)
    flood = Agent(client)
    statuses = [flood.post("/challenge").status_code for _ in range(10)]
    assert statuses.count(HTTPStatus.OK) == 1
    others = [Agent(client).post("/challenge").status_code for _ in range(3)]
    assert others == [HTTPStatus.OK] * 2 + [HTTPStatus.TOO_MANY_REQUESTS]


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_never_exceed_the_limit(limits):
    limits(per_ip=5)
    ip = Agent(Client()).ip
    statuses = run_concurrently(
        lambda: Agent(Client(), ip=ip).post("/challenge").status_code, 12
    )
    assert statuses.count(HTTPStatus.OK) == 5
    assert statuses.count(HTTPStatus.TOO_MANY_REQUESTS) == 7


# --- The blocklist ------------------------------------------------------------------


@pytest.mark.parametrize(
    "network", ["{ip}", "{net24}", "{ip}/32"], ids=["address", "cidr", "host-cidr"]
)
def test_a_blocked_network_gets_no_challenge_and_no_account(client, now, network):
    agent = Agent(client)
    body = agent.solved()  # solved before the block went in
    net24 = agent.ip.rsplit(".", 1)[0] + ".0/24"
    BlockedOrigin.objects.create(
        network=network.format(ip=agent.ip, net24=net24), reason="spam"
    )
    for path, payload in (("/challenge", {}), ("", body)):
        status, code, message = error_of(agent.post(path, payload))
        assert (status, code) == (HTTPStatus.FORBIDDEN, 1120)
        assert "cannot be created from your network" in message
    assert CloudAccount.objects.count() == 0


def test_a_blocked_origin_hash_is_refused(client, settings):
    agent = Agent(client)
    BlockedOrigin.objects.create(
        origin_hash=tokens.keyed_origin_hash(agent.ip, key=origin_hash_key())
    )
    assert error_of(agent.post("/challenge"))[1] == 1120


def test_a_block_ends_when_it_expires(client, now):
    agent = Agent(client)
    block = BlockedOrigin.objects.create(
        network=agent.ip, expires_at=now + timedelta(hours=1)
    )
    assert agent.post("/challenge").status_code == HTTPStatus.FORBIDDEN
    block.expires_at = now - timedelta(seconds=1)
    block.save()
    assert agent.provision().status_code == HTTPStatus.OK


def test_blocks_elsewhere_and_junk_entries_do_not_refuse_anyone(client):
    BlockedOrigin.objects.create(network="203.0.113.0/24")
    BlockedOrigin.objects.create(network="2001:db8::/32")
    BlockedOrigin.objects.create(network="not a network")
    assert Agent(client).provision().status_code == HTTPStatus.OK


def test_a_blocked_ipv6_network(client):
    BlockedOrigin.objects.create(network="2001:db8:abcd::/48")
    blocked = Agent(client, ip="2001:db8:abcd:12::7")
    assert blocked.post("/challenge").status_code == HTTPStatus.FORBIDDEN


def test_blocks_take_effect_and_end_at_once_though_calls_keep_a_snapshot(
    client, django_assert_num_queries
):
    agent = Agent(client)
    assert agent.post("/challenge").status_code == HTTPStatus.OK
    with django_assert_num_queries(0):  # the blocklist as the last call read it
        assert agent.post("/challenge").status_code == HTTPStatus.OK

    block = BlockedOrigin.objects.create(network=agent.ip, reason="spam")
    assert error_of(agent.post("/challenge"))[1] == 1120
    BlockedOrigin.objects.filter(pk=block.pk).delete()  # as the admin's bulk delete
    assert agent.provision().status_code == HTTPStatus.OK
