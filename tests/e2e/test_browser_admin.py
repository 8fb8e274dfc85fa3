"""A moderator in a real Chromium: signs in through allauth, filters the
accounts to those expiring within the hour, suspends one, and its live preview
(served by the real runtime) turns into the suspended page."""

from datetime import timedelta
from http import HTTPStatus

import pytest
from allauth.account.models import EmailAddress
from django.utils import timezone

from accounts.models import AuditEvent, CloudAccount
from tests import preview_runtime
from tests.e2e import test_browser_claim
from tests.preview_runtime import host_of, make_worker

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser-admin")]

runtime = preview_runtime.runtime
preview_settings = preview_runtime.preview_settings
_media_root = preview_runtime._media_root
browser = test_browser_claim.browser
shots = test_browser_claim.shots

HELLO = """
export default {
  fetch() {
    return new Response("<h1>Hello from the preview</h1>",
      {headers: {"content-type": "text/html; charset=utf-8"}});
  },
};
"""


def test_a_moderator_filters_suspends_and_the_preview_changes(
    browser,
    shots,
    live_server,
    runtime,
    preview_settings,
    provision,
    django_user_model,
):
    preview_settings.PUBLIC_BASE_URL = live_server.url
    now = timezone.now()
    soon = provision(now=now - timedelta(minutes=30)).account  # 30 min left
    later = provision(now=now + timedelta(minutes=10)).account  # 70 min left
    script = make_worker(soon, "hello", HELLO)
    runtime.apply(script)
    preview = f"http://{host_of(script)}:{runtime.port}/"
    grace = django_user_model.objects.create_superuser(
        "grace", "grace@example.com", "correct horse battery"
    )
    EmailAddress.objects.create(
        user=grace, email=grace.email, verified=True, primary=True
    )
    page = browser.new_page(viewport={"width": 1400, "height": 900})

    assert page.goto(preview).status == HTTPStatus.OK
    assert "Hello from the preview" in page.content()

    page.goto(f"{live_server.url}/admin/")
    assert "/accounts/login/" in page.url  # the admin signs in through allauth
    page.locator("#id_login").fill(grace.email)
    page.locator("#id_password").fill("correct horse battery")
    page.get_by_role("button", name="Sign In", exact=True).click()
    page.get_by_text("Operations today").wait_for()

    page.goto(f"{live_server.url}/admin/accounts/cloudaccount/")
    page.get_by_role("link", name="Expiring within the hour").click()
    page.wait_for_url("**expiring=hour")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert soon.name in rows.first.inner_text()
    assert later.name not in page.locator("#result_list").inner_text()
    page.screenshot(path=shots / "admin-expiring-within-the-hour.png")

    rows.first.locator('input[name="_selected_action"]').check()
    page.locator('select[name="action"]').select_option("suspend")
    page.get_by_role("button", name="Run").click()
    page.get_by_text(f"Suspended: {soon.name}.").wait_for()
    # It left the "expiring" list (no longer waiting); the suspended list has it.
    page.goto(f"{live_server.url}/admin/accounts/cloudaccount/?state__exact=suspended")
    assert "Suspended (was pending)" in page.locator("#result_list").inner_text()
    assert CloudAccount.objects.get(pk=soon.pk).state == "suspended"
    assert AuditEvent.objects.filter(
        account=soon, kind=AuditEvent.Kind.SUSPENDED, actor=grace
    ).exists()

    def suspended_page() -> bool:
        answer = page.goto(preview)
        return answer.status == HTTPStatus.GONE and "suspended" in page.content()

    runtime.wait_for(suspended_page, what="the suspended page")
    assert "Hello from the preview" not in page.content()
    page.screenshot(path=shots / "preview-suspended.png")
    page.close()
