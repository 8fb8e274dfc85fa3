"""The "Unclaimed preview" banner in a real Chromium: every answer Chromium
renders as a page carries it, whatever type (or none) the Worker gives it."""

import pytest
from playwright.sync_api import Error as PlaywrightError

from accounts.models import CloudAccount
from tests import preview_runtime
from tests.e2e.test_browser_claim import browser  # noqa: F401 - the fixture
from tests.preview_runtime import host_of, make_worker

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("previews")]

runtime = preview_runtime.runtime
preview_settings = preview_runtime.preview_settings
_media_root = preview_runtime._media_root

PAGE = "<html><body><p>mine</p></body></html>"
XHTML = '<html xmlns="http://www.w3.org/1999/xhtml"><body><p>mine</p></body></html>'
SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="50">'
    "<text y='20'>mine</text></svg>"
)
WORKER = f"""
const bytes = (text) => new TextEncoder().encode(text);
const ANSWERS = {{
  "/xhtml": [{XHTML!r}, "application/xhtml+xml"],
  "/untyped": [{PAGE!r}, null],
  "/shouting": [{PAGE!r}, "TEXT/HTML ; Charset=UTF-8"],
  "/no-body-tag": ["<p>mine</p>", "text/html"],
  "/sniff-me": [{PAGE!r}, "unknown/unknown"],
  "/nonsense": [{PAGE!r}, "html"],
  "/svg": [{SVG!r}, "image/svg+xml"],
  "/xml": ["<page><p>mine</p></page>", "text/xml"],
}};
export default {{
  async fetch(request) {{
    const [text, type] = ANSWERS[new URL(request.url).pathname];
    const response = new Response(bytes(text));  // bytes: no type of its own
    if (type) response.headers.set("content-type", type);
    return response;
  }},
}};
"""


@pytest.fixture
def account(provision, preview_settings) -> CloudAccount:
    return provision().account


@pytest.mark.parametrize(
    "path",
    [
        "/xhtml",
        "/untyped",
        "/shouting",
        "/no-body-tag",
        "/sniff-me",
        "/nonsense",
        "/svg",
        "/xml",
    ],
)
def test_no_page_chromium_renders_lacks_the_banner(
    runtime,
    account,
    browser,  # noqa: F811
    path,
):
    script = make_worker(account, "pages", WORKER)
    assert runtime.apply(script)["state"] == "running", runtime.log()
    context = browser.new_context()
    try:
        page = context.new_page()
        url = f"http://{host_of(script)}:{runtime.port}{path}"
        try:
            page.goto(url)
        except PlaywrightError as error:
            # Chromium saves it instead of rendering it: nothing to mark.
            assert "Download is starting" in str(error), error
            return
        shown = page.evaluate("document.documentElement.textContent")
        assert "mine" in shown  # Chromium rendered the Worker's page ...
        assert "Unclaimed preview, expires at" in shown  # ... with the banner
        banner = page.locator("[role=note]")
        assert banner.is_visible()
        assert "report abuse" in banner.inner_text()
    finally:
        context.close()
