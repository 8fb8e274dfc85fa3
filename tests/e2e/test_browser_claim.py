"""A real Chromium claims deployments on a live server: a new person on a phone
signs up on the way, an existing one signs in, every other state shows its own
page, and a deployment made by the real wrangler changes hands. Screenshots land
in artifacts/screenshots/ (set CLAIMPORTAL_SCREENSHOTS=docs/screenshots to
refresh the README's)."""

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.utils import timezone
from playwright.sync_api import Browser, Page, Request, expect, sync_playwright

from accounts.models import AuditEvent, CloudAccount, WorkerDeployment
from tests.claim_builders import NEVER_SHOWN, full_deploy
from tests.conftest import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]

PROJECTS = Path(__file__).resolve().parent / "projects"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
DESKTOP = {"viewport": {"width": 1280, "height": 900}}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Playwright's sync API keeps an event loop on this thread; the ORM calls the
    # tests make between page actions are still plain synchronous code.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def shots() -> Path:
    folder = ROOT / os.environ.get("CLAIMPORTAL_SCREENSHOTS", "artifacts/screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def site(live_server, settings):
    settings.PUBLIC_BASE_URL = live_server.url
    return live_server.url


@pytest.fixture
def deployed(provision):
    made = provision(origin_hint="203.0.113.0/24")
    full_deploy(made.account)
    return made


class Recorder:
    """Every request a page makes, to prove the key never leaves in a Referer."""

    def __init__(self, page: Page, site: str) -> None:
        self.requests: list[Request] = []
        self.site = site
        page.on("request", lambda request: self.requests.append(request))

    def assert_no_leak(self, key: str) -> None:
        """The key was in one request (the link), never in a Referer, and no
        Referer left our own origin."""
        assert [r.url for r in self.requests if key in r.url] == [
            f"{self.site}/claim/{key}/"
        ]
        referers = [r.headers.get("referer", "") for r in self.requests]
        assert not [r for r in referers if key in r]
        for request, referer in zip(self.requests, referers, strict=True):
            if referer:
                assert request.url.startswith(self.site), (request.url, referer)
        assert len(self.requests) >= 3  # link, page, stylesheet: all recorded


def open_page(browser: Browser, site: str, **context) -> tuple[Page, Recorder]:
    page = browser.new_context(**context).new_page()
    return page, Recorder(page, site)


def test_a_new_person_on_a_phone_signs_up_verifies_and_claims(
    browser, site, deployed, shots
):
    page, recorder = open_page(browser, site, **PHONE)
    key = deployed.claim_key
    # allauth mails one code per address per few minutes, cache-wide.
    email = f"grace-{uuid.uuid4().hex[:8]}@example.com"

    response = page.goto(deployed.claim_url)

    assert response.status == 200
    assert page.url == f"{site}/claim/"
    assert page.locator("h1").inner_text() == "An agent deployed this for you"
    # JavaScript turned the UTC deadline into local time and a live countdown.
    expect(page.locator("[data-countdown]")).to_have_text(
        re.compile(r"^\d+:\d\d left$")
    )
    assert "UTC" not in page.locator(".deadline time").inner_text()
    assert page.locator(".qr svg").is_visible()
    preview = page.get_by_role("link", name=re.compile(r"hello-worker\."))
    assert preview.get_attribute("rel") == "noopener noreferrer"
    page.screenshot(path=shots / "claim-landing-phone.png", full_page=True)

    page.get_by_role("link", name="Create an account to claim").click()
    page.get_by_text("You are claiming a deployment").wait_for()
    page.locator("#id_email").fill(email)
    page.locator("#id_password1").fill("a long passphrase 42")
    page.locator("#id_password2").fill("a long passphrase 42")
    page.get_by_role("button", name="Sign Up").click()
    page.get_by_text("Enter Email Verification Code").wait_for()
    code = re.search(r"^([A-Z0-9]{4}-[A-Z0-9]{4})$", mail.outbox[-1].body, re.M)[1]
    page.locator("#id_code").fill(code)
    page.get_by_role("button", name="Confirm").click()

    page.get_by_text(f"It will belong to {email}").wait_for()
    assert page.url == f"{site}/claim/"
    page.get_by_role("button", name=f"Claim {deployed.account.name}").click()

    page.get_by_text(f"{deployed.account.name} is yours").wait_for()
    assert page.url == f"{site}/mine/{deployed.account.pk}/"
    content = page.content()
    for shown in ["hello-worker", "hello-worker-cache", "hello-worker-db", "Counter"]:
        assert shown in content
    assert NEVER_SHOWN not in content
    page.screenshot(path=shots / "claim-done-phone.png", full_page=True)

    account = CloudAccount.objects.get(pk=deployed.account.pk)
    assert account.owner.email == email
    assert account.state == CloudAccount.State.CLAIMED
    recorder.assert_no_leak(key)
    assert key not in page.url
    assert key not in page.evaluate("document.referrer")


@pytest.fixture
def ada(django_user_model):
    """A person with a verified address and a password."""
    ada = django_user_model.objects.create_user(
        "ada", "ada@example.com", "correct horse battery"
    )
    EmailAddress.objects.create(user=ada, email=ada.email, verified=True, primary=True)
    return ada


def sign_in_from_the_claim_page(page: Page, claim_url: str) -> None:
    page.goto(claim_url)
    page.get_by_role("link", name="I have an account: sign in").click()
    page.locator("#id_login").fill("ada@example.com")
    page.locator("#id_password").fill("correct horse battery")
    page.get_by_role("button", name="Sign In", exact=True).click()
    page.get_by_text("It will belong to ada@example.com").wait_for()


def test_an_existing_person_signs_in_keeps_the_agent_an_hour_and_claims(
    browser, site, deployed, ada, shots
):
    page, recorder = open_page(browser, site, **DESKTOP)
    sign_in_from_the_claim_page(page, deployed.claim_url)

    page.screenshot(path=shots / "claim-landing-desktop.png", full_page=True)
    page.get_by_label("Yes, for 1 hour").check()
    page.get_by_role("button", name=f"Claim {deployed.account.name}").click()

    page.get_by_text("can keep deploying to it until").wait_for()
    assert page.locator("pre.secret").inner_text().startswith("cpt_")
    page.screenshot(path=shots / "claim-done-desktop.png", full_page=True)
    assert CloudAccount.objects.get(pk=deployed.account.pk).owner == ada
    recorder.assert_no_leak(deployed.claim_key)
    assert deployed.claim_key not in page.url


def test_a_planted_link_does_not_replace_the_claim_a_person_holds(
    browser, site, deployed, provision, ada
):
    """Another site sends a signed-in person, who is reviewing their own claim,
    to a claim link of its own: the browser asks which to keep."""
    planted = provision()
    page, _recorder = open_page(browser, site, **DESKTOP)
    sign_in_from_the_claim_page(page, deployed.claim_url)

    # A page elsewhere (never on the network: the browser answers it itself).
    evil = "http://planting.example.test/"
    page.context.route(
        evil,
        lambda route: route.fulfill(
            content_type="text/html",
            body=f'<script>location = "{planted.claim_url}"</script>',
        ),
    )
    response = page.goto(evil)
    page.wait_for_url(f"{site}/claim/")
    page.get_by_role(
        "heading", name="Two claim links are open in this browser"
    ).wait_for()
    assert response is not None
    page.get_by_role("button", name=f"Keep {deployed.account.name}").click()

    page.get_by_role("button", name=f"Claim {deployed.account.name}").click()
    page.get_by_text(f"{deployed.account.name} is yours").wait_for()
    assert CloudAccount.objects.get(pk=deployed.account.pk).owner == ada
    assert CloudAccount.objects.get(pk=planted.account.pk).owner is None


def test_every_other_state_has_its_own_page(
    browser, site, provision, deployed, user, shots
):
    expired = provision(now=timezone.now() - timedelta(hours=2))
    taken = provision()
    CloudAccount.objects.filter(pk=taken.account.pk).update(
        state=CloudAccount.State.CLAIMED, owner=user
    )

    for key, status, heading in [
        ("no-such-link", 404, "This claim link is not valid"),
        (expired.claim_key, 410, "This claim link has expired"),
        (taken.claim_key, 409, "This deployment has already been claimed"),
    ]:
        page, recorder = open_page(browser, site, **PHONE)
        response = page.goto(f"{site}/claim/{key}/")
        assert (response.status, page.locator("h1").inner_text()) == (status, heading)
        assert page.url == f"{site}/claim/"
        recorder.assert_no_leak(key)
        page.context.close()

    # Declining: the link holder deletes it after a confirmation.
    page, recorder = open_page(browser, site, **PHONE)
    page.goto(deployed.claim_url)
    page.get_by_role("link", name="Delete it now").click()
    page.get_by_role("button", name="Yes, delete everything").click()
    page.get_by_role("heading", name="This deployment was deleted").wait_for()
    page.screenshot(path=shots / "claim-deleted-phone.png", full_page=True)
    account = CloudAccount.objects.get(pk=deployed.account.pk)
    assert account.state == CloudAccount.State.EXPIRED
    assert account.purged_at is not None
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.DECLINED).count() == 1
    again = page.goto(deployed.claim_url)
    assert again.status == 410
    assert [r.url for r in recorder.requests].count(deployed.claim_url) == 2
    assert not [
        r
        for r in recorder.requests
        if "referer" in r.headers and deployed.claim_key in r.headers["referer"]
    ]


def test_from_wrangler_to_owner_the_real_clients_agree(
    browser, wrangler, django_user_model, tmp_path
):
    """wrangler deploys with --temporary; a person claims in the browser and
    makes a token; the agent's wrangler is told to log out, and the owner's
    wrangler deploys with the token."""
    project = shutil.copytree(PROJECTS / "plain", tmp_path / "plain")
    deployed = wrangler("deploy", "--temporary", cwd=project, timeout=240)
    assert deployed.returncode == 0, deployed.output
    claim_url = re.search(r"Claim URL: (\S+)", deployed.output)[1]
    ada = django_user_model.objects.create_user(
        "ada", "ada@example.com", "correct horse battery"
    )
    EmailAddress.objects.create(user=ada, email=ada.email, verified=True, primary=True)
    page, _recorder = open_page(browser, wrangler.api_base.removesuffix("/client/v4"))

    page.goto(claim_url)
    assert "plain-worker" in page.content()
    page.get_by_role("link", name="I have an account: sign in").click()
    page.locator("#id_login").fill(ada.email)
    page.locator("#id_password").fill("correct horse battery")
    page.get_by_role("button", name="Sign In", exact=True).click()
    page.locator("[data-claim-button]").click()
    page.get_by_text("is yours").wait_for()
    page.locator("#id_name").fill("laptop")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("pre.secret").inner_text()
    account = CloudAccount.objects.get(owner=ada)

    refused = wrangler("deploy", "--temporary", cwd=project)
    assert refused.returncode != 0
    assert "claimed" in refused.output
    assert "wrangler logout" in refused.output

    owned = wrangler(
        "deploy",
        cwd=project,
        CLOUDFLARE_API_TOKEN=secret,
        CLOUDFLARE_ACCOUNT_ID=account.pk,
        timeout=240,
    )
    assert owned.returncode == 0, owned.output
    assert WorkerDeployment.objects.filter(script__account=account).count() == 2
