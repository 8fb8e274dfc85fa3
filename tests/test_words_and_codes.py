"""What people and agents are told, in words and in codes: a deleted
deployment says deleted, a claimed link says so plainly, the agent's client is
named as it names itself, the QR code points where a phone can go, and a wait
for a claim ends with the same exit code from bin/demo as from status."""

import io
import re
import threading
import time
from datetime import timedelta
from http import HTTPStatus

import pytest
import qrcode
import qrcode.image.svg
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.edge import pages
from accounts.models import CloudAccount
from accounts.services import purge
from accounts.services.claims import decline_claim
from accounts.services.previews.state import desired_previews
from claimportal_client import demo
from claimportal_client.cli import main as cli_main
from tests.conftest import ROOT

REVIEW = reverse("accounts:claim_review")


def opened(client: Client, key: str) -> Client:
    client.get(reverse("accounts:claim", args=[key]))
    return client


@pytest.mark.django_db
def test_a_deployment_deleted_by_its_link_holder_says_deleted(provision, now):
    deleted, expired = provision(), provision(now=now - timedelta(hours=3))
    decline_claim(key=deleted.claim_key, account_id=deleted.account.pk, now=now)

    gone = desired_previews(now=now + timedelta(seconds=1)).gone

    state, detail = gone[deleted.account.subdomain]
    assert state == "deleted" and detail.startswith("It was deleted at ")
    assert pages.PAGES[state] == (
        410,
        "This preview was deleted by the holder of its claim link.",
    )
    assert gone[expired.account.subdomain][0] == "expired"


@pytest.mark.django_db
def test_an_anonymous_visitor_of_a_claimed_link_is_told_it_was_claimed(
    client, provision, user
):
    taken = provision()
    CloudAccount.objects.filter(pk=taken.account.pk).update(
        state=CloudAccount.State.CLAIMED, owner=user
    )

    page = opened(client, taken.claim_key).get(REVIEW)

    assert page.status_code == HTTPStatus.CONFLICT
    text = page.content.decode()
    assert "It was claimed with this link" in text
    assert "A claim link works only once" in text
    assert "if it was you" not in text.lower()
    assert user.email not in text


@pytest.mark.django_db
def test_the_claim_page_names_the_client_the_agent_reported(client, provision):
    made = provision(user_agent="undici")
    page = opened(client, made.claim_key).get(REVIEW).content.decode()
    assert "undici" not in page and "using <code>" not in page

    def api_call(user_agent: str) -> None:
        response = Client().get(
            f"/client/v4/accounts/{made.account.pk}/workers/scripts",
            headers={
                "Authorization": f"Bearer {made.api_token}",
                "User-Agent": user_agent,
            },
        )
        assert response.status_code == HTTPStatus.OK

    api_call("wrangler/4.164.0")
    api_call("undici")  # a later library call does not take the name back
    api_call("curl/8.0")  # nor does another client once one is known

    page = client.get(REVIEW).content.decode()
    assert "using <code>wrangler 4.164.0</code>" in page
    assert CloudAccount.objects.get(pk=made.account.pk).user_agent == (
        "wrangler/4.164.0"
    )


@pytest.mark.django_db
def test_the_qr_code_holds_the_public_base_url(client, provision, settings):
    settings.PUBLIC_BASE_URL = "http://192.0.2.10:8000"
    made = provision()

    page = opened(client, made.claim_key).get(REVIEW).content.decode()

    drawn = re.search(r"<svg.*?</svg>", page, re.S)[0]
    code = qrcode.QRCode(border=2, image_factory=qrcode.image.svg.SvgPathImage)
    code.add_data(f"http://192.0.2.10:8000/claim/{made.claim_key}/")
    assert drawn == code.make_image().to_string(encoding="unicode")


@pytest.mark.django_db(transaction=True)
def test_demo_wait_and_status_wait_exit_alike_on_expiry(
    live_server, settings, tmp_path, capsys
):
    settings.PUBLIC_BASE_URL = live_server.url
    settings.CLAIMPORTAL_RATE_LIMIT_PER_IP = 10_000
    exits: list[int] = []
    agent = threading.Thread(
        target=lambda: exits.append(
            demo.main(
                [
                    "--base-url",
                    live_server.url,
                    "--project",
                    str(ROOT / "examples" / "agent-demo"),
                    "--via",
                    "python",
                    "--wait",
                ]
            )
        )
    )
    agent.start()
    # Expire it once the demo has deployed and is waiting for the claim.
    deadline, said, printed = time.monotonic() + 120, "", ""
    while "Waiting for a person" not in said and time.monotonic() < deadline:
        time.sleep(0.2)
        captured = capsys.readouterr()
        said += captured.err
        printed += captured.out
    account = CloudAccount.objects.get()
    later = timezone.now() + settings.CLAIMPORTAL_CLAIM_WINDOW
    purge.purge_expired_accounts(now=later + timedelta(seconds=1), batch_size=10)
    agent.join(timeout=120)
    assert "✘ Not claimed (expired)" in printed + capsys.readouterr().out

    # status --wait on the same account: the same code, 3.
    account_file = tmp_path / "account.json"
    cli_out = io.StringIO()
    assert (
        cli_main(
            [
                "create",
                "--base-url",
                live_server.url,
                "--account-file",
                str(account_file),
            ],
            out=cli_out,
            err=io.StringIO(),
        )
        == 0
    )
    created = CloudAccount.objects.exclude(pk=account.pk).get()
    purge.purge_expired_accounts(
        now=timezone.now() + settings.CLAIMPORTAL_CLAIM_WINDOW * 2, batch_size=10
    )
    status_exit = cli_main(
        [
            "status",
            "--wait",
            "--interval",
            "0.1",
            "--base-url",
            live_server.url,
            "--account-file",
            str(account_file),
        ],
        out=io.StringIO(),
        err=io.StringIO(),
    )
    assert CloudAccount.objects.get(pk=created.pk).state == CloudAccount.State.EXPIRED
    assert exits == [status_exit] == [3]
