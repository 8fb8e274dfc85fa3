"""What the official SDK relies on: pages that end, modules named by filename,
and the script's content."""

import pytest

from tests.cloudapi import AccountClient, ok
from tests.workerupload import HELLO, MODULE, form, upload

pytestmark = pytest.mark.django_db

SCRIPT = "workers/scripts/hello"


@pytest.fixture
def api(client, provision) -> AccountClient:
    return AccountClient(client, provision())


def sdk_upload(api, path=SCRIPT, method="put"):
    """Modules as the SDK sends them: every part named "files"."""
    metadata = b'{"main_module": "index.js", "compatibility_date": "2025-01-01"}'
    lib = b"export const x = 1;\n"
    return upload(
        api,
        path,
        form(
            [
                ("metadata", None, "application/json", metadata),
                ("files", "index.js", MODULE, HELLO),
                ("files", "lib.js", MODULE, lib),
            ]
        ),
        method=method,
    )


def test_accounts_list_ends_after_the_one_account(client, api):
    url, auth = "/client/v4/accounts", api.auth
    first = client.get(f"{url}?page=1&per_page=1", **auth).json()
    assert [a["id"] for a in first["result"]] == [api.account.id]
    assert first["result_info"]["total_count"] == 1
    assert client.get(f"{url}?page=2&per_page=1", **auth).json()["result"] == []


def test_modules_named_by_filename_and_the_content_returns_them(api):
    ok(sdk_upload(api))
    content = api.get(SCRIPT)
    assert content["Content-Type"].startswith("multipart/form-data; boundary=")
    body = content.content
    assert b'name="index.js"; filename="index.js"' in body
    assert b'name="lib.js"; filename="lib.js"' in body
    assert HELLO in body


def test_versions_and_deployments_page_to_an_empty_page(api):
    ok(sdk_upload(api))
    ok(sdk_upload(api, f"{SCRIPT}/versions", method="post"))
    page1 = ok(api.get(f"{SCRIPT}/versions?page=1&per_page=1"))["items"]
    page2 = ok(api.get(f"{SCRIPT}/versions?page=2&per_page=1"))["items"]
    assert len(page1) == len(page2) == 1 and page1 != page2
    assert ok(api.get(f"{SCRIPT}/versions?page=3&per_page=1"))["items"] == []
    # deployable=true ignores paging, as on Cloudflare.
    assert (
        len(ok(api.get(f"{SCRIPT}/versions?deployable=true&per_page=1"))["items"]) == 2
    )
    deployments = ok(api.get(f"{SCRIPT}/deployments?page=1&per_page=1"))
    assert deployments["items"] == deployments["deployments"]
    assert len(deployments["items"]) == 1
    assert ok(api.get(f"{SCRIPT}/deployments?page=2&per_page=1"))["items"] == []
