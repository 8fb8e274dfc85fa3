"""The real wrangler 4.164.0 gets a temporary account from claimportal."""

import http.client
import json
import re
import tomllib
from datetime import timedelta
from http import HTTPStatus
from urllib.parse import urlsplit

import pytest

from accounts import tokens
from accounts.models import ApiToken, CloudAccount, Event
from claimportal.settings import base

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LIST_KV = ("kv", "namespace", "list", "--temporary")


def call(method: str, url: str, **headers: str) -> tuple[int, dict]:
    """One raw request to the live server, as a platform backend would send it."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=30)
    try:
        body = "{}" if method == "POST" else None
        connection.request(method, parts.path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_wrangler_gets_reuses_and_reports_a_temporary_account(wrangler, live_server):
    first = wrangler(*LIST_KV)
    assert first.returncode == 0, first.output
    assert "Temporary account ready" in first.stderr
    assert "(created)" in first.stderr
    assert "Claim within: 60 minutes" in first.stderr
    claim_url = re.search(r"Claim URL: (\S+)", first.stderr).group(1)
    assert claim_url.startswith(f"{live_server.url}/claim/")
    assert json.loads(first.stdout) == []  # the new account has no namespaces

    cached = tomllib.loads(wrangler.cache_file.read_text())
    token = cached["account"]["apiToken"]
    account = CloudAccount.objects.get(pk=cached["account"]["id"])
    assert account.state == CloudAccount.State.PENDING
    assert f"Account: {account.name} (created)" in first.stderr
    assert account.origin_hint == "loopback"
    assert account.terms_accepted_at is not None
    # Only the token's hash is stored, and the claim key's.
    stored = ApiToken.objects.get(account=account)
    assert stored.secret_hash == tokens.hash_secret(token)
    assert token not in json.dumps(list(ApiToken.objects.values()), default=str)
    claim_key = claim_url.rstrip("/").rsplit("/", 1)[1]
    assert account.claim_links.get().key_hash == tokens.hash_secret(claim_key)

    second = wrangler(*LIST_KV)
    assert second.returncode == 0, second.output
    assert f"Account: {account.name} (reused)" in second.stderr
    assert "Solving proof-of-work" not in second.stderr
    assert CloudAccount.objects.count() == 1

    # The agent can ask how its account is doing, with the same token.
    _, status = call(
        "GET",
        f"{wrangler.api_base}/provisioning/previews/{account.id}",
        Authorization=f"Bearer {token}",
    )
    assert status["result"]["state"] == "pending"

    # Credentials and --temporary do not mix: wrangler refuses before calling us...
    wrangler.cache_file.unlink()
    refused = wrangler(*LIST_KV, CLOUDFLARE_API_TOKEN="cpt_any")
    assert refused.returncode == 1
    assert "already authenticated" in refused.output
    assert CloudAccount.objects.count() == 1
    # ...and so do we, for a caller that sends them anyway.
    status_code, body = call(
        "POST",
        f"{wrangler.api_base}/provisioning/previews/challenge",
        Authorization="Bearer cpt_any",
    )
    assert status_code == HTTPStatus.FORBIDDEN
    assert "unauthenticated callers only" in body["errors"][0]["message"]


def test_wrangler_solves_the_default_difficulty_and_sends_event_codes(
    wrangler, settings, now
):
    # The suite's settings make the puzzle cheap; here it is the production one.
    settings.CLAIMPORTAL_POW_K = base.CLAIMPORTAL_POW_K
    settings.CLAIMPORTAL_POW_G = base.CLAIMPORTAL_POW_G
    settings.CLAIMPORTAL_POW_SPOT_CHECKS = base.CLAIMPORTAL_POW_SPOT_CHECKS
    Event.objects.create(
        code="DEVWEEK",
        starts_at=now,
        ends_at=now + timedelta(days=2),
        claim_window=timedelta(hours=24),
        quota=1,
    )

    unknown = wrangler(*LIST_KV, "--event-code", "NOSUCHEVENT")
    assert unknown.returncode == 1
    assert "The event code was not found. Check it and try again." in unknown.output

    made = wrangler(*LIST_KV, "--event-code", "DEVWEEK")
    assert made.returncode == 0, made.output
    assert "Claim within: 24 hours" in made.stderr
    account = CloudAccount.objects.get()
    assert account.event.code == "DEVWEEK"

    wrangler.cache_file.unlink()
    exhausted = wrangler(*LIST_KV, "--event-code", "DEVWEEK")
    assert exhausted.returncode == 1
    assert "This event has no temporary accounts remaining." in exhausted.output
    assert CloudAccount.objects.count() == 1
