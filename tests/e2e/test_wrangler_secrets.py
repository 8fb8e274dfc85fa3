"""The real ``wrangler secret`` and ``wrangler versions secret`` commands:
each makes a new version with the changed secrets, deployed at once by
``secret`` and only on ``versions deploy`` by ``versions secret``; the running
preview serves the new value within seconds; views list secrets by name."""

import json
import textwrap
import time
import tomllib
from pathlib import Path

import pytest

from accounts.models import CloudAccount, WorkerScript, WorkerSecret
from accounts.services.workers import all_bindings
from tests import preview_runtime

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("previews-e2e")]

runtime = preview_runtime.runtime
preview_settings = preview_runtime.preview_settings
_media_root = preview_runtime._media_root

T = "--temporary"

WORKER = """
export default {
  async fetch(request, env) {
    return Response.json({ secret: env.SECRET ?? null, other: env.OTHER ?? null });
  },
};
"""


def write_project(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    config = {"name": "secretive", "main": "src/index.js"}
    config["compatibility_date"] = "2026-06-01"
    (root / "wrangler.json").write_text(json.dumps(config))
    (root / "src" / "index.js").write_text(textwrap.dedent(WORKER))
    return root


def served(runtime, host: str, expected: dict, timeout: float = 20) -> None:
    """The preview answers with ``expected`` within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        answer = runtime.get(host, "/")
        if answer.status == 200 and answer.json() == expected:
            return
        assert time.monotonic() < deadline, (answer.status, answer.text)
        time.sleep(0.2)


def ok(run) -> str:
    assert run.returncode == 0, run.output
    return run.output


def test_secret_commands_deploy_a_new_version_the_preview_serves(
    wrangler, runtime, preview_settings, tmp_path
):
    project = write_project(tmp_path / "secretive")
    ok(wrangler("deploy", T, cwd=project, timeout=240))
    account = CloudAccount.objects.get(
        pk=tomllib.loads(wrangler.cache_file.read_text())["account"]["id"]
    )
    script = WorkerScript.objects.get(account=account, name="secretive")
    host = preview_runtime.host_of(script)
    served(runtime, host, {"secret": None, "other": None})

    ok(wrangler("secret", "put", "SECRET", T, cwd=project, stdin="first"))
    served(runtime, host, {"secret": "first", "other": None})
    script.refresh_from_db()
    assert script.current_version.number == 2
    assert script.current_version.secrets == {"SECRET": ["secret_text", "first"]}

    ok(wrangler("secret", "put", "SECRET", T, cwd=project, stdin="second"))
    served(runtime, host, {"secret": "second", "other": None})

    (tmp_path / "bulk.json").write_text(json.dumps({"SECRET": "third", "OTHER": "o"}))
    ok(wrangler("secret", "bulk", str(tmp_path / "bulk.json"), T, cwd=project))
    served(runtime, host, {"secret": "third", "other": "o"})
    assert set(
        WorkerSecret.objects.filter(script=script).values_list("name", flat=True)
    ) == {
        "SECRET",
        "OTHER",
    }

    listed = ok(wrangler("secret", "list", T, "--format", "json", cwd=project))
    assert {
        s["name"] for s in json.JSONDecoder().raw_decode(listed, listed.index("["))[0]
    } == {
        "SECRET",
        "OTHER",
    }
    assert "third" not in listed

    ok(wrangler("secret", "delete", "OTHER", T, cwd=project, stdin="y\n"))
    served(runtime, host, {"secret": "third", "other": None})
    script.refresh_from_db()
    assert script.current_version.number == 5
    assert list(script.secrets.values_list("name", flat=True)) == ["SECRET"]


def test_versions_secret_commands_make_versions_deployed_only_when_asked(
    wrangler, runtime, preview_settings, tmp_path
):
    project = write_project(tmp_path / "secretive")
    ok(wrangler("deploy", T, cwd=project, timeout=240))
    ok(wrangler("secret", "put", "SECRET", T, cwd=project, stdin="live"))
    account = CloudAccount.objects.get(
        pk=tomllib.loads(wrangler.cache_file.read_text())["account"]["id"]
    )
    script = WorkerScript.objects.get(account=account, name="secretive")
    host = preview_runtime.host_of(script)
    served(runtime, host, {"secret": "live", "other": None})

    out = ok(
        wrangler("versions", "secret", "put", "SECRET", T, cwd=project, stdin="next")
    )
    (tmp_path / "bulk.json").write_text(json.dumps({"OTHER": "x"}))
    ok(
        wrangler(
            "versions", "secret", "bulk", str(tmp_path / "bulk.json"), T, cwd=project
        )
    )
    # Two new versions, neither deployed: the preview and /secrets are as before.
    script.refresh_from_db()
    newest = script.versions.order_by("-number").first()
    assert newest.number == 4 and script.current_version.number == 2
    assert newest.secrets == {
        "SECRET": ["secret_text", "next"],
        "OTHER": ["secret_text", "x"],
    }
    assert list(script.secrets.values_list("name", flat=True)) == ["SECRET"]
    time.sleep(1)
    assert runtime.get(host, "/").json() == {"secret": "live", "other": None}
    assert "next" not in out

    # versions secret list reads the deployed version's bindings: names only.
    listed = ok(wrangler("versions", "secret", "list", T, cwd=project))
    assert "SECRET" in listed and "live" not in listed
    assert {"name": "SECRET", "type": "secret_text"} in all_bindings(version=newest)

    ok(wrangler("versions", "deploy", f"{newest.pk}@100%", "--yes", T, cwd=project))
    served(runtime, host, {"secret": "next", "other": "x"})
    listed = ok(wrangler("versions", "secret", "list", T, cwd=project))
    assert "OTHER" in listed and "SECRET" in listed and "next" not in listed

    ok(wrangler("versions", "secret", "delete", "OTHER", T, cwd=project, stdin="y\n"))
    script.refresh_from_db()
    latest = script.versions.order_by("-number").first()
    assert latest.number == 5 and set(latest.secrets) == {"SECRET"}
    assert script.current_version == newest  # not deployed until asked
    ok(wrangler("versions", "deploy", f"{latest.pk}@100%", "--yes", T, cwd=project))
    served(runtime, host, {"secret": "next", "other": None})
