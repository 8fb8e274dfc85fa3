"""A claim ends what the agent held: every link and upload token it was handed
before the claim stops working, and no link made before the claim shows what
the owner writes after it. With a grace period the agent keeps what deploying
needs, until the grace ends, and nothing more."""

import hashlib
from http import HTTPStatus
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.services import claims
from tests.cloudapi import AccountClient, error_code, ok
from tests.test_assets_api import FILES, open_session, send_bucket

pytestmark = pytest.mark.django_db

DB = "d1/database"


def claim_in_the_browser(made, user, grace_hours: str = "") -> None:
    """What a person does: open the link, sign in, press the button."""
    person = Client()
    person.force_login(user)
    person.get(reverse("accounts:claim", args=[made.claim_key]))
    claimed = person.post(
        reverse("accounts:claim_review"),
        {"account": made.account.pk, "agent_grace_hours": grace_hours},
    )
    assert claimed.status_code == HTTPStatus.FOUND, claimed.content[:500]
    assert claimed["Location"] == reverse("accounts:account", args=[made.account.pk])


def owner_api(client, made, user) -> AccountClient:
    issued = claims.create_owner_token(
        account_id=made.account.pk, user=user, now=timezone.now(), name="laptop"
    )
    return AccountClient(
        client, SimpleNamespace(account=made.account, api_token=issued.secret)
    )


@pytest.mark.parametrize("grace_hours", ["", "1"], ids=["no-grace", "grace"])
def test_a_claim_ends_the_agents_links_and_upload_tokens(
    client, provision, user, grace_hours
):
    made = provision()
    agent = AccountClient(client, made)
    db = ok(agent.post(DB, {"name": "notes"}))
    ok(
        agent.post(
            f"{DB}/{db['uuid']}/query",
            {"sql": "CREATE TABLE t (who TEXT); INSERT INTO t VALUES ('agent')"},
        )
    )
    export_link = urlsplit(
        ok(agent.post(f"{DB}/{db['uuid']}/export", {}))["result"]["signed_url"]
    ).path
    sql = b"INSERT INTO t VALUES ('smuggled');"
    etag = hashlib.md5(sql, usedforsecurity=False).hexdigest()
    import_link = urlsplit(
        ok(agent.post(f"{DB}/{db['uuid']}/import", {"action": "init", "etag": etag}))[
            "upload_url"
        ]
    ).path
    session = ok(open_session(agent))

    claim_in_the_browser(made, user, grace_hours)
    owner = owner_api(client, made, user)
    ok(
        owner.post(
            f"{DB}/{db['uuid']}/query", {"sql": "INSERT INTO t VALUES ('owner')"}
        )
    )

    # The export link made before the claim shows nothing, grace or not.
    old_export = client.get(export_link)
    assert (old_export.status_code, error_code(old_export)) == (HTTPStatus.GONE, 7411)
    old_import = client.put(import_link, sql, content_type="application/sql")
    assert (old_import.status_code, error_code(old_import)) == (HTTPStatus.GONE, 7411)
    # The upload token works on only while the agent may keep deploying.
    upload = send_bucket(
        client, made.account.pk, session["jwt"], session["buckets"][0], FILES
    )
    if grace_hours:
        assert upload.status_code in (200, 201, 202), upload.content[:300]
    else:
        assert upload.status_code == HTTPStatus.UNAUTHORIZED
        assert "Run the deploy again" in upload.json()["errors"][0]["message"]

    # The owner's own export, made after the claim, has everything.
    fresh = owner.post(f"{DB}/{db['uuid']}/export", {})
    dump = client.get(urlsplit(ok(fresh)["result"]["signed_url"]).path)
    body = b"".join(dump.streaming_content)
    assert b"VALUES('owner')" in body
    assert b"smuggled" not in body
