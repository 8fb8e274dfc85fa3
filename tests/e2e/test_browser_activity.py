"""In Chromium, the claim page and the owner's account page show each
Worker's modules and recent events as text: markup a hostile Worker logs or
ships is never run, and its secrets never appear."""

import pytest
from django.utils import timezone

from accounts.models import CloudAccount, WorkerModule, WorkerScript
from accounts.services import tails
from tests.e2e.test_browser_claim import DESKTOP, PHONE, browser, open_page, site

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]

__all__ = ["browser", "site"]  # fixtures this module uses

HOSTILE = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
SECRET = "hunter2-secret-value"


def hostile_worker(account: CloudAccount) -> WorkerScript:
    script = WorkerScript.objects.create(account=account, name="hostile")
    version = script.versions.create(
        number=1, main_module="index.js", secrets={"TOKEN": ["secret_text", SECRET]}
    )
    source = f"export default {{ fetch() {{ return new Response('{HOSTILE}'); }} }};"
    WorkerModule.objects.create(
        version=version,
        name="index.js",
        content_type="application/javascript+module",
        content=source.encode(),
    )
    WorkerModule.objects.create(
        version=version,
        name="big.txt",
        content_type="text/plain",
        content=b"a" * (70 * 1024),
    )
    script.current_version = version
    script.save(update_fields=["current_version"])
    tails.record_events(
        version=version,
        now=timezone.now(),
        traces=[
            {
                "outcome": "exception",
                "eventTimestamp": 1,
                "event": {
                    "request": {"url": f"https://h/?q={HOSTILE}", "method": "GET"},
                    "response": {"status": 500},
                },
                "logs": [{"level": "warn", "message": [HOSTILE, "key", SECRET]}],
                "exceptions": [{"name": "Error", "message": f"leak {SECRET}"}],
            }
        ],
    )
    return script


def check_panel(page) -> None:
    panel = page.locator("article.worker-activity[data-worker=hostile]")
    panel.locator("summary", has_text="index.js").click()
    assert HOSTILE in panel.locator("pre.source").first.inner_text()
    assert "big.txt" in panel.inner_text()
    assert "Shown up to its first" in panel.text_content()
    events = panel.locator("ol.events").inner_text()
    assert "GET https://h/?q=" in events and HOSTILE in events
    assert "(warn)" in events and "Error: leak [redacted]" in events
    assert SECRET not in page.content()
    assert page.evaluate("window.pwned") is None
    assert page.locator("article.worker-activity img").count() == 0


def test_claim_and_account_pages_show_code_and_events_escaped(
    browser, site, provision, user, client
):
    made = provision()
    hostile_worker(made.account)
    page, _recorder = open_page(browser, site, **PHONE)
    assert page.goto(made.claim_url).status == 200
    check_panel(page)
    page.context.close()

    CloudAccount.objects.filter(pk=made.account.pk).update(
        state=CloudAccount.State.CLAIMED, owner=user
    )
    client.force_login(user)
    cookie = client.cookies["sessionid"].value
    context = browser.new_context(**DESKTOP)
    context.add_cookies([{"name": "sessionid", "value": cookie, "url": site}])
    page = context.new_page()
    assert page.goto(f"{site}/mine/{made.account.pk}/").status == 200
    check_panel(page)
    context.close()
