"""The Python client against a live server: create, deploy, status, and every
error it can raise, each from a real answer of the real server."""

import socket
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.cache import cache
from django.utils import timezone

from accounts.models import (
    BlockedOrigin,
    CloudAccount,
    D1Database,
    DurableObjectNamespace,
    KVNamespace,
    Queue,
    WorkerScript,
)
from accounts.services import claims, moderation, provisioning, purge, workers
from claimportal_client import (
    ApiError,
    AuthenticationFailed,
    ChallengeRefused,
    Client,
    ConnectionFailed,
    MalformedResponse,
    NotFound,
    ProjectError,
    ProvisioningRefused,
    RateLimited,
    TemporaryAccount,
    load_project,
)
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db(transaction=True)

SAMPLE = ROOT / "examples" / "agent-demo"


@pytest.fixture
def server(live_server, settings) -> str:
    settings.PUBLIC_BASE_URL = live_server.url
    # Other tests provision from this address too; limits have their own tests.
    settings.CLAIMPORTAL_RATE_LIMIT_PER_IP = 10_000
    settings.CLAIMPORTAL_RATE_LIMIT_GLOBAL = 10_000
    return live_server.url


@pytest.fixture
def client(server) -> Client:
    return Client(server, timeout=30)


@pytest.fixture
def account(client) -> TemporaryAccount:
    return client.create_account()


def claim_key(account: TemporaryAccount) -> str:
    return account.claim_url.rstrip("/").rsplit("/", 1)[1]


def claim(account: TemporaryAccount, user) -> None:
    claims.confirm_claim(
        key=claim_key(account), account_id=account.id, user=user, now=timezone.now()
    )


def same_time(a, b) -> bool:
    return abs(a - b) < timedelta(milliseconds=1)  # the API sends milliseconds


def expire_all_pending(settings) -> None:
    later = timezone.now() + settings.CLAIMPORTAL_CLAIM_WINDOW
    purge.purge_expired_accounts(now=later + timedelta(seconds=1), batch_size=50)


# --- create ----------------------------------------------------------------------


def test_create_account_solves_the_challenge_and_returns_the_claim_link(
    client, server, settings, tmp_path
):
    steps: list[str] = []
    made = client.create_account(progress=steps.append)
    assert steps and steps[0].startswith("Solving proof-of-work challenge")
    row = CloudAccount.objects.get(pk=made.id)
    assert row.state == CloudAccount.State.PENDING
    assert made.name == row.name
    assert made.claim_url.startswith(f"{server}/claim/")
    assert same_time(made.claim_expires_at, row.claim_expires_at)
    assert same_time(made.expires_at, row.claim_expires_at)
    assert made.is_usable()
    assert not made.is_usable(row.claim_expires_at)

    saved = tmp_path / "cfg" / "account.json"
    made.save(saved)
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert TemporaryAccount.load(saved) == made
    saved.write_text("{not json")
    assert TemporaryAccount.load(saved) is None


def test_the_base_url_may_name_the_api_base(server):
    assert Client(server + "/client/v4/").api == server + "/client/v4"
    with pytest.raises(ValueError, match="http"):
        Client("ftp://example.test")


# --- deploy ----------------------------------------------------------------------


def test_deploy_the_sample_provisions_every_resource_and_redeploys_in_place(
    client, account
):
    project = load_project(SAMPLE)
    deployment = client.deploy(account, project)

    script = WorkerScript.objects.get(account_id=account.id, name="agent-demo")
    version = script.current_version
    assert str(version.id) == deployment.version_id
    assert script.migration_tag == "v1"
    assert script.workers_dev_enabled
    kv = KVNamespace.objects.get(account_id=account.id)
    d1 = D1Database.objects.get(account_id=account.id)
    queue = Queue.objects.get(account_id=account.id)
    assert (kv.title, d1.name, queue.name) == (
        "agent-demo-cache",
        "agent-demo-notes",
        "agent-demo-jobs",
    )
    assert deployment.kv_namespaces == {"CACHE": kv.id}
    assert deployment.d1_databases == {"DB": str(d1.uuid)}
    assert list(
        DurableObjectNamespace.objects.filter(account_id=account.id).values_list(
            "class_name", flat=True
        )
    ) == ["Counter"]
    assert [c.script_name for c in queue.consumers.all()] == ["agent-demo"]
    by_name = {b["name"]: b for b in version.bindings}
    assert by_name["CACHE"]["namespace_id"] == kv.id
    assert by_name["DB"]["id"] == str(d1.uuid)
    assert by_name["JOBS"]["queue_name"] == "agent-demo-jobs"
    assert by_name["COUNTER"]["class_name"] == "Counter"
    assert by_name["ASSETS"]["type"] == "assets"
    assert by_name["GREETING"]["text"].startswith("Hello")
    assert set(version.assets["manifest"]) == {"/index.html", "/style.css", "/app.js"}
    assert (deployment.assets_uploaded, deployment.assets_total) == (3, 3)
    assert deployment.url == workers.preview_url(
        account=script.account, script_name="agent-demo"
    )

    seed = (SAMPLE / "seed.sql").read_text()
    assert len(client.d1_query(account, deployment.d1_databases["DB"], seed)) == 2
    rows = client.d1_query(
        account, deployment.d1_databases["DB"], "SELECT count(*) AS n FROM notes"
    )
    assert rows[0]["results"] == [{"n": 3}]

    again = client.deploy(account, project)
    assert again.kv_namespaces == deployment.kv_namespaces
    assert again.d1_databases == deployment.d1_databases
    assert again.assets_uploaded == 0
    assert again.version_id != deployment.version_id
    assert KVNamespace.objects.filter(account_id=account.id).count() == 1
    assert Queue.objects.get(pk=queue.pk).consumers.count() == 1
    script.refresh_from_db()
    assert script.migration_tag == "v1"


def test_kv_values_are_written_with_the_token(client, account):
    deployment = client.deploy(account, load_project(SAMPLE))
    namespace = deployment.kv_namespaces["CACHE"]
    client.kv_put(account, namespace, "greeting/first visit", b"hello")
    entry = KVNamespace.objects.get(pk=namespace).entries.get(
        key="greeting/first visit"
    )
    assert bytes(entry.value) == b"hello"


# --- status ----------------------------------------------------------------------


def test_status_is_pending_then_claimed(client, account, user):
    status = client.status(account)
    assert (status.id, status.state, status.claimed_at) == (account.id, "pending", None)
    assert not status.settled
    assert status.claim_expires_at == account.claim_expires_at

    claim(account, user)
    status = client.status(account)
    assert status.state == "claimed" and status.settled
    assert status.claimed_at is not None
    assert client.wait_for_claim(account, interval=0.1).state == "claimed"


def test_status_is_expired_after_the_window(client, account, settings):
    expire_all_pending(settings)
    polled = []
    status = client.wait_for_claim(account, interval=0.1, on_poll=polled.append)
    assert status.state == "expired"
    assert [s.state for s in polled] == ["expired"]


def test_a_suspended_account_says_so_and_refuses_the_token(client, account, user):
    moderation.suspend_account(account_id=account.id, actor=user, now=timezone.now())
    status = client.wait_for_claim(account, interval=0.1)
    assert status.state == "suspended" and status.settled
    with pytest.raises(AuthenticationFailed, match="suspended"):
        client.deploy(account, load_project(SAMPLE))


def test_waiting_gives_up_at_the_timeout_with_the_pending_status(client, account):
    polled = []
    status = client.wait_for_claim(
        account, interval=0.2, timeout=0.5, on_poll=polled.append
    )
    assert status.state == "pending"
    assert 2 <= len(polled) <= 4


# --- errors ------------------------------------------------------------------------


def test_no_server_is_a_connection_failure():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: refused
        with pytest.raises(ConnectionFailed, match="Could not reach"):
            Client(f"http://127.0.0.1:{port}", timeout=5).create_account()


def test_a_base_url_that_is_not_claimportal_is_a_malformed_response(server):
    with pytest.raises(MalformedResponse, match="without a v4 envelope") as caught:
        Client(server + "/not-the-api").create_account()
    assert caught.value.status == 404


def test_an_expired_challenge_is_refused(client, settings):
    settings.CLAIMPORTAL_POW_CHALLENGE_TTL = timedelta(minutes=-1)
    with pytest.raises(ChallengeRefused) as caught:
        client.create_account()
    assert caught.value.code == 1102
    assert "new one" in caught.value.message


def test_a_blocked_network_is_refused(client):
    BlockedOrigin.objects.create(network="127.0.0.1/32", reason="test")
    with pytest.raises(ProvisioningRefused) as caught:
        client.create_account()
    assert (caught.value.status, caught.value.code) == (403, 1120)


def test_an_unknown_event_code_is_refused(client):
    with pytest.raises(ProvisioningRefused) as caught:
        client.create_account(event_code="NO-SUCH-EVENT")
    assert caught.value.code == 1036


def test_too_many_accounts_is_rate_limited(client, settings):
    # A window length of its own keeps this counter apart from other tests'.
    window = 86_398
    settings.CLAIMPORTAL_RATE_LIMIT_PER_IP = 1
    settings.CLAIMPORTAL_RATE_LIMIT_WINDOW_SECONDS = window
    subject = provisioning.client_origin("127.0.0.1").subject
    try:
        client.create_account()
        with pytest.raises(RateLimited) as caught:
            client.create_account()
        assert caught.value.status == 429
        assert 0 < caught.value.retry_after <= window
    finally:
        start = int(timezone.now().timestamp()) // window * window
        for action in ("challenge", "previews"):
            cache.delete(f"rl:{action}:client:{subject}:{window}:{start}")


def test_a_claimed_account_refuses_the_agent_token(client, account, user):
    claim(account, user)
    with pytest.raises(AuthenticationFailed) as caught:
        client.deploy(account, load_project(SAMPLE))
    assert caught.value.status == 401
    assert "claimed" in caught.value.message


def test_an_expired_account_refuses_the_agent_token(client, account, settings):
    expire_all_pending(settings)
    with pytest.raises(AuthenticationFailed, match="expired"):
        client.deploy(account, load_project(SAMPLE))


def test_another_accounts_id_is_not_found(client, account):
    other = client.create_account()
    mixed = TemporaryAccount(
        **{**vars(account), "id": other.id}  # our token, their account
    )
    with pytest.raises(NotFound) as caught:
        client.status(mixed)
    assert caught.value.code == 7003


def test_a_script_over_the_size_limit_is_an_api_error(client, account, settings):
    settings.CLAIMPORTAL_MAX_SCRIPT_BYTES = 100
    with pytest.raises(ApiError) as caught:
        client.deploy(account, load_project(SAMPLE))
    assert caught.value.status == 413
    assert caught.value.to_dict()["code"] == caught.value.code


def test_a_broken_project_is_refused_before_any_call(tmp_path: Path):
    with pytest.raises(ProjectError, match=r"No wrangler\.json"):
        load_project(tmp_path)
    (tmp_path / "wrangler.json").write_text('{"name": "x", "r2_buckets": []}')
    with pytest.raises(ProjectError, match="r2_buckets"):
        load_project(tmp_path)
    (tmp_path / "wrangler.json").write_text(
        '{"name": "x", "main": "index.js", "compatibility_date": "2026-06-01"}'
    )
    with pytest.raises(ProjectError, match="does not exist"):
        load_project(tmp_path)
    (tmp_path / "index.js").write_text('import { Hono } from "hono";\n')
    with pytest.raises(ProjectError, match="hono"):
        load_project(tmp_path)
