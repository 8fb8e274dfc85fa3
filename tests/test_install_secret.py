"""A fresh install signs with a key of its own: what anyone could sign with the
key that development settings once shipped is refused by the real server, as
bin/run starts it (gunicorn on development settings, no SECRET_KEY)."""

import math
import os
import stat
import time
from http import HTTPStatus

import pytest
import requests
from django.core import signing

from accounts.services import d1, pow
from tests.test_faults import gunicorn
from tests.test_provisioning_api import PRIVACY, TERMS

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# The SECRET_KEY every copy of claimportal used to run with.
PUBLIC_KEY = "dev-only-insecure-key-change-me-0123456789abcdef"


def easy_challenge(key: str) -> str:
    """A challenge anyone could mint with ``key``: k=1, g=1 (a fraction of a
    millisecond of work instead of a second)."""
    payload = {
        "id": os.urandom(16).hex(),
        "seed": "A" * 43,
        "k": 1,
        "g": 1,
        "exp": math.ceil(time.time() + 300),
    }
    return signing.dumps(
        payload, key=key, salt="claimportal.pow.challenge", compress=False
    )


def provision_with(origin: str, token: str) -> requests.Response:
    body = {
        "termsOfService": TERMS,
        "privacyPolicy": PRIVACY,
        "acceptTermsOfService": "yes",
        "challengeToken": token,
        "solution": {"checkpoints": pow.solve(seed="A" * 43, k=1, g=1)},
    }
    return requests.post(
        origin + "/client/v4/provisioning/previews", json=body, timeout=30
    )


def test_a_fresh_install_refuses_what_the_public_key_signs(
    tmp_path, provision, settings, monkeypatch
):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    var = tmp_path / "var"
    made = provision()
    database = d1.create_database(
        account=made.account, name="victim", now=made.account.created_at
    )
    forged_link = signing.dumps(
        {"db": str(database.uuid), "tables": [], "nonce": "x" * 22},
        key=PUBLIC_KEY,
        salt="claimportal.d1.export",
    )
    with gunicorn(
        DJANGO_SETTINGS_MODULE="claimportal.settings.dev",
        DEBUG="false",
        CLAIMPORTAL_VAR_DIR=str(var),
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
    ) as origin:
        key_file = var / "secret_key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        own_key = key_file.read_text().strip()
        assert len(own_key) >= 50 and own_key != PUBLIC_KEY

        refused = provision_with(origin, easy_challenge(PUBLIC_KEY))
        assert refused.status_code == HTTPStatus.FORBIDDEN, refused.text
        assert refused.json()["errors"][0]["code"] == pow.ChallengeForged.code

        download = requests.get(
            f"{origin}/client/v4/accounts/{made.account.pk}/d1/database/"
            f"{database.uuid}/export-download/{forged_link}",
            timeout=30,
        )
        assert download.status_code == HTTPStatus.NOT_FOUND
        assert b"INSERT" not in download.content

        # The same forgery with the install's own key would pass: the key is
        # what stops it, and it never leaves var/.
        accepted = provision_with(origin, easy_challenge(own_key))
        assert accepted.status_code == HTTPStatus.OK, accepted.text

    # A restart keeps the install's key (sessions and links outlive restarts).
    with gunicorn(
        DJANGO_SETTINGS_MODULE="claimportal.settings.dev",
        DEBUG="false",
        CLAIMPORTAL_VAR_DIR=str(var),
    ):
        assert key_file.read_text().strip() == own_key
