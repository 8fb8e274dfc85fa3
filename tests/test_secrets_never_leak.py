"""A whole life, provision -> deploy -> claim -> purge, through the HTTP API and
the pages, with every logger at DEBUG: no claim key and no raw API token in any
log record, audit row, database row, admin page or error page; the link's
Referer carries no key; secrets are stored only as their hashes."""

import json
import logging
from datetime import timedelta
from http import HTTPStatus
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts import tokens
from accounts.models import ApiToken, AuditEvent, ClaimLink, CloudAccount
from accounts.services.purge import purge_expired_accounts
from tests.cloudapi import AccountClient, ok
from tests.test_provisioning_api import Agent
from tests.workerupload import script_form, upload

METADATA = {"main_module": "index.js", "compatibility_date": "2026-11-01"}


class Everything(logging.Handler):
    """Keeps every record, formatted with its exception and stack."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record) + repr(record.args))


@pytest.fixture
def every_log_record():
    handler = Everything()
    loggers = [logging.getLogger()] + [
        logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
    ]
    levels = [(logger, logger.level) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)  # also the ones that do not propagate
    try:
        yield handler.lines
    finally:
        for logger, level in levels:
            logger.setLevel(level)
            logger.removeHandler(handler)


def every_row_as_text() -> str:
    """Every row of every table of ours, as PostgreSQL prints it, and every
    session decoded (their data is stored base64-encoded, out of a search's
    sight)."""
    texts = []
    with connection.cursor() as cursor:
        for model in apps.get_models(include_auto_created=True):
            table = connection.ops.quote_name(model._meta.db_table)
            cursor.execute(f"SELECT t::text FROM {table} t")  # noqa: S608
            texts += [row[0] for row in cursor.fetchall()]
    texts += [json.dumps(s.get_decoded()) for s in Session.objects.all()]
    return "\n".join(texts)


def provision_over_http(client: Client) -> tuple[str, str, str]:
    """(account id, API token, claim key) as wrangler gets them."""
    response = Agent(client).provision()
    assert response.status_code == HTTPStatus.OK
    result = response.json()["result"]
    key = result["claim"]["url"].rstrip("/").rsplit("/", 1)[1]
    return result["account"]["id"], result["account"]["apiToken"], key


@pytest.mark.django_db(transaction=True)
def test_a_whole_life_leaves_no_secret_behind(
    every_log_record, user, admin_client, settings, now
):
    settings.DEBUG_PROPAGATE_EXCEPTIONS = False
    agent_client = Client()
    account_id, token, key = provision_over_http(agent_client)
    doomed_id, doomed_token, doomed_key = provision_over_http(agent_client)
    secrets = {token, key, doomed_token, doomed_key}
    pages = []

    # Deploy through the API, and some calls that fail.
    account = CloudAccount.objects.get(pk=account_id)
    api = AccountClient(agent_client, SimpleNamespace(account=account, api_token=token))
    ok(upload(api, "workers/scripts/hello", script_form(METADATA)))
    ok(api.post("storage/kv/namespaces", {"title": "things"}))
    pages.append(api.post("storage/kv/namespaces", b"{not json"))
    pages.append(api.get("no/such/route"))
    pages.append(
        agent_client.get(
            f"/client/v4/accounts/{doomed_id}/workers/scripts",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
    )

    # Claim through the pages.
    browser = Client()
    opened = browser.get(reverse("accounts:claim", args=[key]))
    assert opened.status_code == HTTPStatus.FOUND
    assert opened["Referrer-Policy"] == "no-referrer"
    assert key not in opened["Location"]
    review = browser.get(opened["Location"])
    pages.append(review)
    assert review["Referrer-Policy"] in ("same-origin", "no-referrer")
    browser.force_login(user)
    claimed = browser.post(reverse("accounts:claim_review"), {"account": account_id})
    assert claimed.status_code == HTTPStatus.FOUND
    pages.append(browser.get(claimed["Location"]))

    # The used link, a wrong key, a trailing path, the old token: error pages.
    stranger = Client()
    for path in (
        reverse("accounts:claim", args=[key]),
        reverse("accounts:claim", args=[key[:-2] + "xx"]),
        reverse("accounts:claim", args=[key]) + "extra/path",
    ):
        response = stranger.get(path, follow=True)
        pages.append(response)
    pages.append(api.get("workers/scripts"))
    assert pages[-1].status_code == HTTPStatus.UNAUTHORIZED

    # Purge the account nobody claimed.
    CloudAccount.objects.filter(pk=doomed_id).update(
        claim_expires_at=now - timedelta(minutes=1)
    )
    result = purge_expired_accounts(now=now + timedelta(seconds=1), batch_size=10)
    assert result.accounts == 1
    pages.append(
        Client().get(reverse("accounts:claim", args=[doomed_key]), follow=True)
    )

    # Every admin page a moderator would open.
    for path in (
        "/admin/",
        "/admin/accounts/cloudaccount/",
        f"/admin/accounts/cloudaccount/{account_id}/change/",
        f"/admin/accounts/cloudaccount/{doomed_id}/change/",
        "/admin/accounts/apitoken/",
        "/admin/accounts/auditevent/",
        "/admin/accounts/claimlink/",
    ):
        response = admin_client.get(path)
        assert response.status_code in (HTTPStatus.OK, HTTPStatus.NOT_FOUND), path
        pages.append(response)

    audit = "\n".join(str(row) for row in AuditEvent.objects.values())
    assert AuditEvent.objects.count() >= 4
    rows = every_row_as_text()
    logs = "\n".join(every_log_record)
    assert len(every_log_record) > 20  # DEBUG really was on
    for secret in secrets:
        assert secret not in logs
        assert secret not in audit
        assert secret not in rows
        for page in pages:
            assert secret.encode() not in page.content, page.request["PATH_INFO"]
            assert secret not in str(page.headers)

    # Only hashes are kept, and they are the hashes of these secrets.
    hashes = set(ApiToken.objects.values_list("secret_hash", flat=True))
    assert {tokens.hash_secret(token), tokens.hash_secret(doomed_token)} <= hashes
    key_hashes = set(ClaimLink.objects.values_list("key_hash", flat=True))
    assert tokens.hash_secret(key) in key_hashes
