"""Every page fits a phone: at 320 and 390 px nothing scrolls sideways, signed
out or signed in, with the longest email, account, Worker and binding names
the forms and the API accept. Chromium measures each page."""

import uuid

import pytest
from allauth.account.models import EmailAddress
from playwright.sync_api import Page

from accounts.models import ApiToken, CloudAccount, KVNamespace, WorkerScript
from accounts.services.tokens import issue_token
from tests.claim_builders import full_deploy
from tests.e2e import test_browser_claim as claim_pages

browser, site = claim_pages.browser, claim_pages.site

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]

WIDTHS = (320, 390)
# Names as long as their fields allow, without a space to break at.
LONG_WORKER = "w" + "-long" * 9 + "-end"  # 50: its resources add suffixes
LONG_BINDING = "A_VERY_LONG_BINDING_NAME_THAT_NEVER_ENDS_" * 2
LONG_ACCOUNT_NAME = "Ünïcode-" + "x" * 92  # 100 characters
SIGNED_OUT_PAGES = [
    "/",
    "/claim/",
    "/claim/delete/",
    "/claim/no-such-link/",
    "/accounts/login/",
    "/accounts/signup/",
    "/accounts/login/code/",
    "/accounts/signup/passkey/",
    "/accounts/password/reset/",
    "/no-such-page/",
]
SIGNED_IN_PAGES = [
    "/",
    "/claim/",
    "/mine/",
    "/accounts/email/",
    "/accounts/password/change/",
    "/accounts/2fa/",
    "/accounts/2fa/webauthn/",
    "/accounts/logout/",
]

OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const wide = [...document.querySelectorAll("body *")]
    .filter(el => el.getBoundingClientRect().right > width + 0.5)
    .filter(el => !el.closest("pre"))
    .map(el => el.tagName.toLowerCase() + (el.className ? "." + el.className : "")
      + " " + Math.round(el.getBoundingClientRect().right));
  return {scroll: document.documentElement.scrollWidth, width, wide};
}"""


def long_binding_deploy(account: CloudAccount) -> None:
    script = full_deploy(account, name=LONG_WORKER)
    version = script.current_version
    version.bindings.append(
        {"type": "plain_text", "name": LONG_BINDING, "text": "never shown"}
    )
    version.save(update_fields=["bindings"])
    KVNamespace.objects.create(account=account, title="kv-" + "n" * 200)


def assert_fits(page: Page, url: str, width: int) -> None:
    page.goto(url)
    measured = page.evaluate(OVERFLOW)
    assert measured["scroll"] <= measured["width"] == width, (url, width, measured)
    assert not measured["wide"], (url, width, measured["wide"][:8])


@pytest.mark.parametrize("width", WIDTHS)
def test_no_page_scrolls_sideways(browser, site, provision, django_user_model, width):
    pending = provision()
    long_binding_deploy(pending.account)
    email = f"{'l' * 40}-{uuid.uuid4().hex[:8]}@a-rather-long-subdomain.example.com"
    person = django_user_model.objects.create_user(
        "layout-" + uuid.uuid4().hex[:8], email, "correct horse battery"
    )
    EmailAddress.objects.create(user=person, email=email, verified=True, primary=True)
    owned = provision()
    long_binding_deploy(owned.account)
    CloudAccount.objects.filter(pk=owned.account.pk).update(
        state=CloudAccount.State.CLAIMED, owner=person, name=LONG_ACCOUNT_NAME
    )
    issue_token(
        account=owned.account,
        kind=ApiToken.Kind.OWNER,
        now=owned.account.created_at,
        name="t" * 100,
    )
    taken = provision()
    CloudAccount.objects.filter(pk=taken.account.pk).update(
        state=CloudAccount.State.CLAIMED, owner=person
    )
    assert WorkerScript.objects.filter(account=owned.account).exists()

    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    page.goto(pending.claim_url)  # holds the claim, so /claim/ shows it
    for path in [*SIGNED_OUT_PAGES, f"/report/{pending.account.pk}/"]:
        assert_fits(page, site + path, width)

    page.goto(f"{site}/accounts/login/")
    page.locator("#id_login").fill(email)
    page.locator("#id_password").fill("correct horse battery")
    page.get_by_role("button", name="Sign In", exact=True).click()
    page.get_by_role("button", name="Sign out").wait_for()
    for path in [*SIGNED_IN_PAGES, f"/mine/{owned.account.pk}/"]:
        assert_fits(page, site + path, width)
    # The claim page once signed in, and a link that someone else claimed.
    page.goto(pending.claim_url)
    assert_fits(page, f"{site}/claim/", width)
    page.goto(taken.claim_url)
    assert_fits(page, f"{site}/claim/", width)
    context.close()
