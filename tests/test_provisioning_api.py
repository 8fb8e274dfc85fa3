"""POST provisioning/previews/challenge, POST provisioning/previews and the
status read, over HTTP as wrangler and platform backends call them."""

import ipaddress
import json
import secrets
from collections import Counter
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

import pytest
from django.test import Client

from accounts import tokens
from accounts.models import ApiToken, AuditEvent, CloudAccount, Event
from accounts.services import pow
from accounts.services.provisioning import origin_hash_key
from tests.conftest import run_concurrently

PREVIEWS = "/client/v4/provisioning/previews"
TERMS = "https://www.cloudflare.com/terms/"
PRIVACY = "https://www.cloudflare.com/privacypolicy/"


def random_ip() -> str:
    """A fresh client address (100.64.0.0/10), so tests never share a budget."""
    base = int(ipaddress.IPv4Address("100.64.0.0"))
    return str(ipaddress.IPv4Address(base + secrets.randbelow(1 << 22)))


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


class Agent:
    """An unauthenticated caller at one address, sending what wrangler sends."""

    def __init__(self, client: Client, ip: str | None = None) -> None:
        self.client = client
        self.ip = ip or random_ip()

    def post(self, path: str = "", body: Any = None, **extra: Any):
        extra.setdefault("content_type", "application/json")
        data = extra.pop("raw", None)
        if data is None:
            data = json.dumps({} if body is None else body)
        return self.client.post(
            PREVIEWS + path, data=data, REMOTE_ADDR=self.ip, **extra
        )

    def challenge(self) -> dict[str, Any]:
        response = self.post("/challenge")
        assert response.status_code == HTTPStatus.OK, response.content
        return response.json()["result"]

    def solved(self, *, event_code: str | None = None) -> dict[str, Any]:
        """A previews body with a fresh, honestly solved challenge."""
        challenge = self.challenge()
        body: dict[str, Any] = {
            "termsOfService": TERMS,
            "privacyPolicy": PRIVACY,
            "acceptTermsOfService": "yes",
            "challengeToken": challenge["challengeToken"],
            "solution": {
                "checkpoints": pow.solve(
                    seed=challenge["seed"], k=challenge["k"], g=challenge["g"]
                )
            },
        }
        if event_code is not None:
            body["eventCode"] = event_code
        return body

    def provision(self, **kwargs: Any):
        return self.post("", self.solved(**kwargs))


def error_of(response) -> tuple[int, int, str]:
    body = response.json()
    assert body["success"] is False
    return response.status_code, body["errors"][0]["code"], body["errors"][0]["message"]


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.fixture
def agent(client) -> Agent:
    return Agent(client)


pytestmark = pytest.mark.django_db


# --- The happy path -------------------------------------------------------------------


def test_challenge_has_the_four_fields_wrangler_requires(agent, settings):
    result = agent.challenge()
    assert (result["k"], result["g"]) == (settings.CLAIMPORTAL_POW_K, 50)
    seed = result["seed"]
    assert len(pow.decode_seed(seed)) == 32
    assert isinstance(result["challengeToken"], str)
    assert all(ord(c) <= 255 for c in result["challengeToken"])


def test_a_solved_challenge_gives_an_account_a_token_and_a_claim_url(agent, settings):
    settings.PUBLIC_BASE_URL = "https://portal.example.test"
    before = datetime.now(UTC)
    response = agent.post("", agent.solved(), HTTP_USER_AGENT="undici")
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert body["success"] is True
    result = body["result"]
    assert "eventCodeAccepted" not in result
    account = CloudAccount.objects.get(pk=result["account"]["id"])
    assert result["account"]["name"] == account.name == account.subdomain
    assert result["account"]["type"] == "standard"
    # Times are the real deadlines, as JavaScript's Date.parse reads them.
    assert parse_time(
        result["account"]["expiresAt"]
    ) == account.claim_expires_at.replace(
        microsecond=account.claim_expires_at.microsecond // 1000 * 1000
    )
    assert parse_time(result["claim"]["expiresAt"]) > before + timedelta(minutes=59)
    assert result["claim"]["url"].startswith("https://portal.example.test/claim/")
    # The secrets are random, stored only hashed, and the token opens the account.
    token = result["account"]["apiToken"]
    stored = ApiToken.objects.get(pk=result["account"]["tokenId"])
    assert stored.secret_hash == tokens.hash_secret(token)
    assert token not in json.dumps(list(ApiToken.objects.values()), default=str)
    claim_key = result["claim"]["url"].rstrip("/").rsplit("/", 1)[1]
    assert account.claim_links.get().key_hash == tokens.hash_secret(claim_key)
    listed = agent.client.get("/client/v4/accounts", **bearer(token))
    assert [a["id"] for a in listed.json()["result"]] == [account.id]
    # What the claimant is later shown about where the account came from.
    assert account.terms_accepted_at is not None
    assert (account.terms_of_service_url, account.privacy_policy_url) == (
        TERMS,
        PRIVACY,
    )
    assert account.user_agent == "undici"
    assert account.origin_hash == tokens.keyed_origin_hash(
        agent.ip, key=origin_hash_key()
    )
    assert account.origin_hint == str(
        ipaddress.ip_network(f"{agent.ip}/24", strict=False)
    )
    assert AuditEvent.objects.filter(
        account=account, kind=AuditEvent.Kind.PROVISIONED
    ).exists()


@pytest.mark.parametrize("content_type", ["text/plain;charset=UTF-8", ""])
def test_the_body_is_json_whatever_its_content_type(agent, content_type):
    response = agent.post("", agent.solved(), content_type=content_type)
    assert response.status_code == HTTPStatus.OK


def test_loopback_callers_are_described_as_loopback(client):
    response = Agent(client, ip="127.0.0.1").provision()
    account = CloudAccount.objects.get(pk=response.json()["result"]["account"]["id"])
    assert account.origin_hint == "loopback"


# --- Refusals: the challenge ----------------------------------------------------------


def test_a_replayed_challenge_is_refused(agent):
    body = agent.solved()
    assert agent.post("", body).status_code == HTTPStatus.OK
    status, code, message = error_of(agent.post("", body))
    assert (status, code) == (HTTPStatus.CONFLICT, 1103)
    assert "already used" in message
    assert CloudAccount.objects.count() == 1


def test_an_expired_challenge_is_refused(agent, now):
    old = pow.issue_challenge(
        now=now - timedelta(minutes=6), k=8, g=50, ttl=timedelta(minutes=5)
    )
    body = agent.solved()
    body["challengeToken"] = old.token
    body["solution"]["checkpoints"] = pow.solve(seed=old.seed, k=8, g=50)
    status, code, message = error_of(agent.post("", body))
    assert (status, code) == (HTTPStatus.GONE, 1102)
    assert "expired" in message


def test_a_forged_challenge_token_is_refused(agent):
    body = agent.solved()
    body["challengeToken"] = body["challengeToken"][:-2] + "xx"
    status, code, _ = error_of(agent.post("", body))
    assert (status, code) == (HTTPStatus.FORBIDDEN, 1101)


def test_a_wrong_checkpoint_count_is_refused(agent):
    body = agent.solved()
    body["solution"]["checkpoints"] = body["solution"]["checkpoints"][:-44]
    status, code, message = error_of(agent.post("", body))
    assert (status, code) == (HTTPStatus.BAD_REQUEST, 1104)
    assert "this challenge needs 9" in message


def test_a_tampered_segment_is_refused(agent, settings):
    settings.CLAIMPORTAL_POW_SPOT_CHECKS = settings.CLAIMPORTAL_POW_K  # check all
    body = agent.solved()
    raw = bytearray(pow.base64.b64decode(body["solution"]["checkpoints"]))
    raw[5 * 32] ^= 1
    body["solution"]["checkpoints"] = pow.base64.b64encode(bytes(raw)).decode()
    status, code, _ = error_of(agent.post("", body))
    assert (status, code) == (HTTPStatus.FORBIDDEN, 1105)
    assert CloudAccount.objects.count() == 0


# --- Refusals: the request ------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"acceptTermsOfService": None}, "acceptTermsOfService"),
        ({"acceptTermsOfService": "no"}, "acceptTermsOfService"),
        ({"challengeToken": None}, "challengeToken"),
        ({"solution": None}, "solution"),
        ({"solution": {"checkpoints": 12}}, "solution.checkpoints"),
        ({"termsOfService": "javascript:alert(1)"}, "termsOfService"),
        ({"privacyPolicy": "https://x.test/" + "p" * 600}, "privacyPolicy"),
    ],
)
def test_bad_input_is_a_400_that_names_the_field(agent, change, expected):
    body = {**agent.solved(), **change}
    body = {key: value for key, value in body.items() if value is not None}
    status, code, message = error_of(agent.post("", body))
    assert (status, code) == (HTTPStatus.BAD_REQUEST, 10001)
    assert expected in message
    assert CloudAccount.objects.count() == 0


@pytest.mark.parametrize("raw", ["", "not json", "[1, 2]", '"yes"', "{" * 5000])
def test_a_body_that_is_not_a_json_object_is_a_400(agent, raw):
    status, code, _ = error_of(agent.post("", raw=raw))
    assert (status, code) == (HTTPStatus.BAD_REQUEST, 10001)


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_AUTHORIZATION": "Bearer cpt_something"},
        {"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"},
        {"HTTP_X_AUTH_KEY": "k", "HTTP_X_AUTH_EMAIL": "a@example.com"},
    ],
    ids=["bearer", "basic", "global-key"],
)
def test_callers_with_credentials_are_refused(agent, headers):
    body = agent.solved()
    for path, payload in (("", body), ("/challenge", {})):
        status, code, message = error_of(agent.post(path, payload, **headers))
        assert (status, code) == (HTTPStatus.FORBIDDEN, 1110)
        assert "unauthenticated callers only" in message
    assert CloudAccount.objects.count() == 0


def test_other_methods_are_405_in_the_envelope(agent):
    response = agent.client.get(PREVIEWS + "/challenge")
    assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert response.json()["success"] is False


# --- Event codes ----------------------------------------------------------------------


@pytest.fixture
def event(now) -> Event:
    return Event.objects.create(
        code="DEVWEEK",
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=1),
        claim_window=timedelta(days=3),
        quota=10,
    )


def test_an_event_code_gives_the_events_window_and_takes_a_seat(agent, event, now):
    response = agent.provision(event_code="DEVWEEK")
    assert response.status_code == HTTPStatus.OK
    result = response.json()["result"]
    assert result["eventCodeAccepted"] is True
    account = CloudAccount.objects.get(pk=result["account"]["id"])
    assert account.event == event
    assert account.claim_expires_at - account.created_at == timedelta(days=3)
    event.refresh_from_db()
    assert event.accounts_created == 1


@pytest.mark.parametrize(
    ("event_code", "change", "status", "code"),
    [
        ("bad code!", {}, HTTPStatus.BAD_REQUEST, 1035),
        (12345, {}, HTTPStatus.BAD_REQUEST, 1035),
        ("", {}, HTTPStatus.BAD_REQUEST, 1035),
        ("NOSUCHEVENT", {}, HTTPStatus.NOT_FOUND, 1036),
        ("DEVWEEK", {"starts_at": timedelta(hours=1)}, HTTPStatus.FORBIDDEN, 1037),
        ("DEVWEEK", {"ends_at": -timedelta(hours=1)}, HTTPStatus.GONE, 1038),
        ("DEVWEEK", {"disabled": True}, HTTPStatus.FORBIDDEN, 1039),
        ("DEVWEEK", {"accounts_created": 10}, HTTPStatus.CONFLICT, 1040),
        # An event window no calendar can hold: the account cannot be prepared.
        (
            "DEVWEEK",
            {"claim_window": timedelta(days=3_000_000)},
            HTTPStatus.SERVICE_UNAVAILABLE,
            1041,
        ),
    ],
    ids=[
        "malformed",
        "not-a-string",
        "empty",
        "not-found",
        "not-started",
        "ended",
        "disabled",
        "exhausted",
        "could-not-prepare",
    ],
)
def test_event_errors_have_the_codes_wrangler_maps(
    agent, event, now, event_code, change, status, code
):
    for field, value in change.items():
        if field in ("starts_at", "ends_at"):
            value = now + value
        setattr(event, field, value)
    event.save()
    seats_before = Event.objects.get(pk=event.pk).accounts_created
    body = agent.solved()
    body["eventCode"] = event_code
    assert error_of(agent.post("", body))[:2] == (status, code)
    assert CloudAccount.objects.count() == 0
    assert Event.objects.get(pk=event.pk).accounts_created == seats_before


@pytest.mark.django_db(transaction=True)
def test_the_last_seat_goes_to_exactly_one_of_many_concurrent_callers(now):
    event = Event.objects.create(
        code="LASTSEAT",
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=1),
        claim_window=timedelta(hours=2),
        quota=5,
        accounts_created=4,
    )
    callers = 6
    ready = []
    for _ in range(callers):
        agent = Agent(Client())
        ready.append((agent, agent.solved(event_code="LASTSEAT")))

    def call() -> tuple[int, int | None]:
        agent, body = ready.pop()
        response = agent.post("", body)
        code = None if response.json()["success"] else error_of(response)[1]
        return response.status_code, code

    outcomes = run_concurrently(call, callers)
    assert Counter(outcomes) == {(200, None): 1, (409, 1040): callers - 1}
    assert CloudAccount.objects.filter(event=event).count() == 1
    event.refresh_from_db()
    assert event.accounts_created == 5


# --- Bearer tokens on account paths ---------------------------------------------------


def test_a_token_on_another_accounts_path_is_a_404_that_is_not_worker_not_found(
    agent, provision
):
    mine = agent.provision().json()["result"]["account"]
    other = provision().account
    for path in (
        f"/client/v4/accounts/{other.id}/storage/kv/namespaces",
        f"{PREVIEWS}/{other.id}",
        f"/client/v4/accounts/{'f' * 32}/storage/kv/namespaces",
    ):
        response = agent.client.get(path, **bearer(mine["apiToken"]))
        status, code, _ = error_of(response)
        assert (status, code) == (HTTPStatus.NOT_FOUND, 7003)
        assert code not in (10007, 10090)


# --- Status for the agent -------------------------------------------------------------


def status_of(agent: Agent, account_id: str, token: str):
    return agent.client.get(f"{PREVIEWS}/{account_id}", **bearer(token))


def test_status_of_a_pending_account(agent):
    made = agent.provision().json()["result"]
    account = made["account"]
    response = status_of(agent, account["id"], account["apiToken"])
    assert response.status_code == HTTPStatus.OK
    result = response.json()["result"]
    assert result == {
        "id": account["id"],
        "name": account["name"],
        "state": "pending",
        "expiresAt": account["expiresAt"],
        "claim": {"expiresAt": made["claim"]["expiresAt"], "claimedAt": None},
    }
    # It reports, and nothing more: no token, no claim URL.
    assert made["claim"]["url"] not in response.content.decode()


def test_status_after_a_claim_answers_the_revoked_temporary_token(agent, user, now):
    account = agent.provision().json()["result"]["account"]
    # The claim service's outcome, written as a fixture: claimed, token revoked.
    CloudAccount.objects.filter(pk=account["id"]).update(
        state=CloudAccount.State.CLAIMED, owner=user, claimed_at=now
    )
    ApiToken.objects.filter(pk=account["tokenId"]).update(
        revoked_at=now, revoked_because=ApiToken.RevokedBecause.CLAIMED
    )
    result = status_of(agent, account["id"], account["apiToken"]).json()["result"]
    assert result["state"] == "claimed"
    assert parse_time(result["claim"]["claimedAt"]) <= datetime.now(UTC)
    # Everything else refuses that token, saying what happened.
    listed = agent.client.get("/client/v4/accounts", **bearer(account["apiToken"]))
    status, _, message = error_of(listed)
    assert status == HTTPStatus.UNAUTHORIZED
    assert "claimed" in message
    assert "wrangler logout" in message


def test_status_says_expired_once_the_deadline_passed(agent, now):
    account = agent.provision().json()["result"]["account"]
    CloudAccount.objects.filter(pk=account["id"]).update(
        claim_expires_at=now - timedelta(seconds=1)
    )
    result = status_of(agent, account["id"], account["apiToken"]).json()["result"]
    assert result["state"] == "expired"
    CloudAccount.objects.filter(pk=account["id"]).update(
        state=CloudAccount.State.EXPIRED
    )
    ApiToken.objects.filter(pk=account["tokenId"]).update(
        revoked_at=now, revoked_because=ApiToken.RevokedBecause.EXPIRED
    )
    result = status_of(agent, account["id"], account["apiToken"]).json()["result"]
    assert result["state"] == "expired"


def test_status_refuses_a_token_a_person_revoked(agent, now):
    account = agent.provision().json()["result"]["account"]
    ApiToken.objects.filter(pk=account["tokenId"]).update(
        revoked_at=now, revoked_because=ApiToken.RevokedBecause.MODERATOR
    )
    status, _, message = error_of(status_of(agent, account["id"], account["apiToken"]))
    assert status == HTTPStatus.UNAUTHORIZED
    assert "moderator" in message


def test_status_needs_a_token(agent):
    account = agent.provision().json()["result"]["account"]
    response = agent.client.get(f"{PREVIEWS}/{account['id']}")
    assert error_of(response)[:2] == (HTTPStatus.UNAUTHORIZED, 10000)
    assert "auth_md" in response["WWW-Authenticate"]


def test_status_is_a_read_only_get(agent):
    account = agent.provision().json()["result"]["account"]
    response = agent.client.post(
        f"{PREVIEWS}/{account['id']}", **bearer(account["apiToken"])
    )
    assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED


# --- The client address ---------------------------------------------------------------


def test_forwarded_for_is_ignored_unless_proxies_are_trusted(client, settings):
    proxy = Agent(client, ip="127.0.0.1")
    spoofed = proxy.post("", proxy.solved(), HTTP_X_FORWARDED_FOR="198.51.100.7")
    account = CloudAccount.objects.get(pk=spoofed.json()["result"]["account"]["id"])
    assert account.origin_hint == "loopback"

    settings.CLAIMPORTAL_TRUSTED_PROXY_COUNT = 1
    forwarded = proxy.post(
        "", proxy.solved(), HTTP_X_FORWARDED_FOR="192.0.2.1, 198.51.100.7"
    )
    account = CloudAccount.objects.get(pk=forwarded.json()["result"]["account"]["id"])
    assert account.origin_hint == "198.51.100.0/24"
