"""/auth.md, /.well-known/auth.md and /llms.txt: served as documents, and true.

The scenario test reads the served auth.md the way an agent would: it takes the
endpoints, the example fields, the numbers and the Python solver from the text
and checks each against the live server."""

import json
import re
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

import pytest
from django.core.cache import cache
from django.utils import timezone

from accounts.models import BlockedOrigin
from accounts.services import claims, provisioning, purge

pytestmark = pytest.mark.django_db(transaction=True)


def fetch(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def api(method: str, url: str, body: Any = None, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    status, headers, raw = fetch(method, url, body, headers)
    return status, headers, json.loads(raw)


@pytest.fixture
def server(live_server, settings):
    settings.PUBLIC_BASE_URL = live_server.url
    # Other tests provision from this address too; the limit has its own test.
    settings.CLAIMPORTAL_RATE_LIMIT_PER_IP = 10_000
    settings.CLAIMPORTAL_RATE_LIMIT_GLOBAL = 10_000
    return live_server.url


def document(server: str, path: str = "/auth.md") -> str:
    status, _, raw = fetch("GET", server + path)
    assert status == HTTPStatus.OK
    return raw.decode()


def section(text: str, heading: str) -> str:
    start = text.index(f"## {heading}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def endpoints(text: str) -> set[tuple[str, str]]:
    return set(re.findall(r"^ {4}(GET|POST|PUT|PATCH|DELETE) (\S+)$", text, re.M))


def result_keys(text: str) -> set[str]:
    """The field names an example response in ``text`` promises."""
    return set(re.findall(r'"(\w+)":', text[text.index('"result"') :]))


def all_keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in all_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in all_keys(v)}
    return set()


def documented_solver(text: str):
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    scope: dict[str, Any] = {}
    exec(code, scope)  # noqa: S102 - the document's own example, run as written
    return scope["solve"]


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.mark.parametrize("path", ["/auth.md", "/.well-known/auth.md"])
def test_auth_md_is_markdown_at_both_addresses(server, path):
    status, headers, raw = fetch("GET", server + path)
    assert status == HTTPStatus.OK
    assert headers["Content-Type"] == "text/markdown; charset=utf-8"
    assert raw.decode().startswith("# auth.md\n")
    assert raw == fetch("GET", server + "/auth.md")[2]
    assert fetch("HEAD", server + path)[0] == HTTPStatus.OK
    # Refused by CSRF protection or the view; either way a document, not a form.
    assert fetch("POST", server + path, {})[0] in (403, 405)


def test_the_documents_state_the_settings_in_force(server, settings):
    settings.CLAIMPORTAL_CLAIM_WINDOW = timedelta(minutes=5)
    settings.CLAIMPORTAL_POW_K, settings.CLAIMPORTAL_POW_G = 16, 36000
    text = document(server)
    assert re.search(r"within\s+5\s+minutes", text)
    assert '"k": 16, "g": 36000' in text
    assert f"CLOUDFLARE_API_BASE_URL={server}/client/v4 npx wrangler" in text
    assert "Click here to keep this deployment" in text
    llms = document(server, "/llms.txt")
    assert "claiming it within 5 minutes" in llms


def test_llms_txt_links_to_documents_that_exist(server):
    status, headers, raw = fetch("GET", server + "/llms.txt")
    assert status == HTTPStatus.OK
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    text = raw.decode()
    assert text.startswith("# claimportal\n\n> ")
    links = re.findall(r"\]\((\S+?)\)", text)
    assert f"{server}/auth.md" in links
    assert f"{server}/client/v4/openapi.json" in links
    for link in links:
        assert fetch("GET", link)[0] == HTTPStatus.OK, link


def test_every_endpoint_auth_md_names_behaves_as_it_says(server, user):
    text = document(server)
    base = f"{server}/client/v4"
    challenge_url = f"{base}/provisioning/previews/challenge"
    previews_url = f"{base}/provisioning/previews"
    status_url = f"{base}/provisioning/previews/<account_id>"
    openapi_url = f"{base}/openapi.json"
    # Every endpoint the file names is checked below; a new one needs a check.
    assert endpoints(text) == {
        ("POST", challenge_url),
        ("POST", previews_url),
        ("GET", status_url),
        ("GET", openapi_url),
    }

    # 2. A challenge, with the documented fields and difficulty; never with
    # credentials.
    steps = section(text, "2. Ask for a challenge")
    status, _, body = api("POST", challenge_url, {})
    assert status == HTTPStatus.OK and body["success"] is True
    challenge = body["result"]
    assert all_keys(body) >= result_keys(steps)
    k, g = (int(n) for n in re.search(r'"k": (\d+), "g": (\d+)', steps).groups())
    assert (challenge["k"], challenge["g"]) == (k, g)
    ttl = int(re.search(r"for (\d+) minutes", steps).group(1))
    expires = parse_time(challenge["expiresAt"]) - datetime.now(UTC)
    assert timedelta(minutes=ttl - 1) < expires <= timedelta(minutes=ttl)
    status, _, refused = api("POST", challenge_url, {}, token="anything")
    assert status == HTTPStatus.FORBIDDEN
    assert refused["errors"][0]["code"] == 1110

    # 3 and 4. The document's own solver buys an account; the challenge works once.
    solve = documented_solver(text)
    steps = section(text, "4. Create the account")
    request = {
        "acceptTermsOfService": "yes",
        "challengeToken": challenge["challengeToken"],
        "solution": {"checkpoints": solve(challenge["seed"], k, g)},
    }
    status, _, body = api("POST", previews_url, request)
    assert status == HTTPStatus.OK, body
    assert all_keys(body) >= result_keys(steps)
    made = body["result"]
    token, account_id = made["account"]["apiToken"], made["account"]["id"]
    assert re.fullmatch(r"[0-9a-f]{32}", account_id)
    assert made["claim"]["url"].startswith(f"{server}/claim/")
    window = int(re.search(r"within\s+(\d+)\s+minutes", text).group(1))
    left = parse_time(made["claim"]["expiresAt"]) - datetime.now(UTC)
    assert timedelta(minutes=window - 1) < left <= timedelta(minutes=window)
    status, _, replayed = api("POST", previews_url, request)
    assert status == HTTPStatus.CONFLICT
    assert replayed["errors"][0]["code"] in range(1101, 1106)
    fresh = api("POST", challenge_url, {})[2]["result"]
    without_terms = {
        "challengeToken": fresh["challengeToken"],
        "solution": {"checkpoints": solve(fresh["seed"], k, g)},
    }
    status, _, refused = api("POST", previews_url, without_terms)
    assert status == HTTPStatus.BAD_REQUEST and refused["success"] is False

    # 5. The token opens the account's endpoints; a 401 points back here.
    kv_url = f"{base}/accounts/{account_id}/storage/kv/namespaces"
    status, _, listed = api("GET", kv_url, token=token)
    assert status == HTTPStatus.OK and listed["success"] is True
    status, headers, _ = api("GET", kv_url)
    assert status == HTTPStatus.UNAUTHORIZED
    hint = re.search(r'auth_md="([^"]+)"', headers["WWW-Authenticate"]).group(1)
    assert document(server, hint) == text
    status, _, openapi = api("GET", openapi_url)
    assert status == HTTPStatus.OK
    assert openapi["openapi"].startswith("3.")

    # 7. The status: pending now, with the documented fields.
    steps = section(text, "7. Follow the status")
    own_status_url = status_url.replace("<account_id>", account_id)
    status, _, body = api("GET", own_status_url, token=token)
    assert status == HTTPStatus.OK
    assert all_keys(body) >= result_keys(steps)
    assert body["result"]["state"] == "pending"
    assert body["result"]["claim"]["claimedAt"] is None

    # 8. Claimed: the person owns it, the token stops working, the status says so.
    key = made["claim"]["url"].rstrip("/").rsplit("/", 1)[1]
    claims.confirm_claim(key=key, account_id=account_id, user=user, now=timezone.now())
    status, _, refused = api("GET", kv_url, token=token)
    assert status == HTTPStatus.UNAUTHORIZED
    assert "has been claimed" in refused["errors"][0]["message"]
    assert "wrangler logout" in refused["errors"][0]["message"]
    body = api("GET", own_status_url, token=token)[2]["result"]
    assert body["state"] == "claimed" and body["claim"]["claimedAt"]


def test_an_unclaimed_account_expires_as_auth_md_says(server, settings):
    text = document(server)
    made = provisioning.create_temporary_account(now=timezone.now())
    url = f"{server}/client/v4/provisioning/previews/{made.account.id}"
    assert api("GET", url, token=made.api_token)[2]["result"]["state"] == "pending"

    window = int(re.search(r"within\s+(\d+)\s+minutes", text).group(1))
    later = timezone.now() + timedelta(minutes=window, seconds=1)
    done = purge.purge_expired_accounts(now=later, batch_size=10)
    assert done.accounts == 1
    kv_url = f"{server}/client/v4/accounts/{made.account.id}/storage/kv/namespaces"
    status, _, refused = api("GET", kv_url, token=made.api_token)
    assert status == HTTPStatus.UNAUTHORIZED
    assert "expired" in refused["errors"][0]["message"]
    status, _, body = api("GET", url, token=made.api_token)
    assert status == HTTPStatus.OK
    assert body["result"]["state"] == "expired"


def test_the_stated_rate_limit_holds(server, settings):
    # A window length of its own keeps this counter apart from other tests'.
    settings.CLAIMPORTAL_RATE_LIMIT_PER_IP = 3
    settings.CLAIMPORTAL_RATE_LIMIT_WINDOW_SECONDS = 86_399
    text = document(server)
    limit, window = (
        int(n)
        for n in re.search(r"(\d+) provisioning calls per (\d+) seconds", text).groups()
    )
    assert (limit, window) == (3, 86_399)
    origin = provisioning.client_origin("127.0.0.1")
    url = f"{server}/client/v4/provisioning/previews/challenge"
    try:
        answers = [api("POST", url, {}) for _ in range(limit + 1)]
        assert [a[0] for a in answers[:limit]] == [HTTPStatus.OK] * limit
        status, headers, body = answers[limit]
        assert status == HTTPStatus.TOO_MANY_REQUESTS
        assert 0 < int(headers["Retry-After"]) <= window
        assert body["success"] is False
    finally:
        start = int(timezone.now().timestamp()) // window * window
        cache.delete(f"rl:challenge:client:{origin.subject}:{window}:{start}")


def test_a_blocked_network_gets_the_stated_code(server):
    text = document(server)
    code = int(re.search(r"blocked network: 403, code (\d+)", text, re.I).group(1))
    BlockedOrigin.objects.create(network="127.0.0.0/8", reason="test")
    url = f"{server}/client/v4/provisioning/previews/challenge"
    status, _, body = api("POST", url, {})
    assert status == HTTPStatus.FORBIDDEN
    assert body["errors"][0]["code"] == code
