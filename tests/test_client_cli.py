"""``python -m claimportal_client`` against a live server: what a platform
backend's script sees on stdout (JSON), on stderr, and in the exit code."""

import io
import json
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import CloudAccount, WorkerScript
from accounts.services import claims, purge
from claimportal_client.cli import box, claim_within, main
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db(transaction=True)

SAMPLE = ROOT / "examples" / "agent-demo"


@pytest.fixture
def cli(live_server, settings, tmp_path):
    settings.PUBLIC_BASE_URL = live_server.url
    settings.CLAIMPORTAL_RATE_LIMIT_PER_IP = 10_000
    settings.CLAIMPORTAL_RATE_LIMIT_GLOBAL = 10_000
    account_file = tmp_path / "account.json"

    def run(*args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main(
            [
                *args,
                "--base-url",
                live_server.url,
                "--account-file",
                str(account_file),
            ],
            out=out,
            err=err,
        )
        return code, out.getvalue(), err.getvalue()

    run.account_file = account_file
    return run


def test_deploy_creates_an_account_and_json_names_everything(cli):
    code, out, err = cli("deploy", str(SAMPLE), "--json")
    assert code == 0, err
    result = json.loads(out)
    account_id = result["account"]["id"]
    assert WorkerScript.objects.filter(account_id=account_id, name="agent-demo")
    assert result["deployment"]["worker"] == "agent-demo"
    assert set(result["deployment"]["kvNamespaces"]) == {"CACHE"}
    assert set(result["deployment"]["d1Databases"]) == {"DB"}
    assert result["deployment"]["queues"] == ["agent-demo-jobs"]
    assert result["deployment"]["durableObjects"] == ["Counter"]
    assert result["claim"]["url"].startswith(result["baseUrl"] + "/claim/")
    # Notices go to stderr, as wrangler prints them.
    assert "Temporary account ready:" in err
    assert f"\tClaim URL: {result['claim']['url']}" in err
    assert json.loads(cli.account_file.read_text())["account"]["id"] == account_id

    # The next deploy reuses the saved account.
    code, out, err = cli("deploy", str(SAMPLE))
    assert code == 0, err
    assert "(reused)" in err
    assert "Click here to keep this deployment:" in out
    assert result["claim"]["url"] in out
    assert CloudAccount.objects.count() == 1


def test_create_then_status_pending_then_claimed(cli, user):
    code, out, _ = cli("create", "--json")
    assert code == 0
    made = json.loads(out)
    code, out, _ = cli("status", "--json")
    assert code == 0
    assert json.loads(out)["state"] == "pending"
    code, out, _ = cli("status")
    assert "pending" in out and made["claim"]["url"] in out

    key = made["claim"]["url"].rstrip("/").rsplit("/", 1)[1]
    claims.confirm_claim(
        key=key, account_id=made["account"]["id"], user=user, now=timezone.now()
    )
    code, out, err = cli("status", "--wait", "--interval", "0.1", "--json")
    assert code == 0
    assert json.loads(out)["state"] == "claimed"
    assert "claimed" in err  # each poll is noted


def test_common_options_work_before_the_command_too(live_server, settings, tmp_path):
    settings.PUBLIC_BASE_URL = live_server.url
    account_file = tmp_path / "account.json"
    out = io.StringIO()
    options = ["--base-url", live_server.url, "--account-file", str(account_file)]
    assert main([*options, "--json", "create"], out=out, err=io.StringIO()) == 0
    made = json.loads(out.getvalue())
    assert made["claim"]["url"].startswith(live_server.url)
    assert (
        json.loads(account_file.read_text())["account"]["id"] == made["account"]["id"]
    )


def test_waiting_exits_3_when_expired_and_4_while_pending(cli, settings):
    assert cli("create")[0] == 0
    code, out, _ = cli("status", "--wait", "--interval", "0.1", "--timeout", "0.3")
    assert code == 4 and "pending" in out
    later = timezone.now() + settings.CLAIMPORTAL_CLAIM_WINDOW
    purge.purge_expired_accounts(now=later + timedelta(seconds=1), batch_size=10)
    code, out, _ = cli("status", "--wait", "--interval", "0.1", "--json")
    assert code == 3
    assert json.loads(out)["state"] == "expired"


def test_d1_execute_runs_sql_by_database_name(cli):
    assert cli("deploy", str(SAMPLE))[0] == 0
    code, out, err = cli(
        "d1-execute", "agent-demo-notes", "--file", str(SAMPLE / "seed.sql")
    )
    assert code == 0, err
    assert out.startswith("Executed 2 command(s)")
    code, out, _ = cli(
        "d1-execute", "agent-demo-notes", "--command", "SELECT id FROM notes", "--json"
    )
    rows = json.loads(out)["results"][0]["results"]
    assert rows == [{"id": 1}, {"id": 2}, {"id": 3}]
    code, out, err = cli("d1-execute", "nope", "--command", "SELECT 1", "--json")
    assert code == 1
    assert "no D1 database nope" in json.loads(out)["message"]


def test_errors_are_json_on_stdout_and_a_line_on_stderr(cli, user):
    code, out, err = cli("status", "--json")
    assert code == 1
    assert json.loads(out)["error"] == "ClaimportalError"
    assert "Run `create` or `deploy` first" in err

    code, out, _ = cli("create", "--json")
    made = json.loads(out)
    key = made["claim"]["url"].rstrip("/").rsplit("/", 1)[1]
    claims.confirm_claim(
        key=key, account_id=made["account"]["id"], user=user, now=timezone.now()
    )
    # A claimed account is not usable, so deploy makes a new one...
    code, out, err = cli("deploy", str(SAMPLE), "--json")
    assert code == 0, err
    assert json.loads(out)["account"]["id"] != made["account"]["id"]
    # ...and an API error keeps its code and status.
    code, out, err = cli("deploy", str(ROOT / "claimportal"), "--json")
    assert code == 1
    assert json.loads(out)["error"] == "ProjectError"
    assert err.startswith("✘ No wrangler.json")


@pytest.mark.slow
def test_the_module_runs_as_a_program():
    result = subprocess.run(
        [sys.executable, "-m", "claimportal_client", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    for command in ("create", "deploy", "status", "d1-execute"):
        assert command in result.stdout


def test_claim_within_and_box_read_well():
    now = timezone.now()
    assert claim_within(now + timedelta(minutes=5), now) == "5 minutes"
    assert claim_within(now + timedelta(minutes=60), now) == "60 minutes"
    assert claim_within(now + timedelta(hours=24), now) == "24 hours"
    assert claim_within(now + timedelta(days=3), now) == "3 days"
    assert claim_within(now - timedelta(minutes=1), now) == "0 minutes"
    framed = box(["a", "longer line"]).splitlines()
    assert len({len(line) for line in framed}) == 1
    assert framed[1] == "│ a           │"


def test_a_claimed_account_is_reused_while_its_owner_lets_the_agent_deploy(cli, user):
    made = json.loads(cli("create", "--json")[1])
    key = made["claim"]["url"].rstrip("/").rsplit("/", 1)[1]
    claims.confirm_claim(
        key=key,
        account_id=made["account"]["id"],
        user=user,
        now=timezone.now(),
        agent_grace=timedelta(hours=1),
    )
    code, out, err = cli("deploy", str(SAMPLE), "--json")
    assert code == 0, err
    assert json.loads(out)["account"]["id"] == made["account"]["id"]
    assert "(reused)" in err
    owned = WorkerScript.objects.get(account_id=made["account"]["id"])
    assert owned.account.owner == user
