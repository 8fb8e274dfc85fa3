"""Production settings: strict without secrets, services or a preview domain of
their own, clean under check --deploy; entry points never fall back to
development settings."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, manage

pytestmark = pytest.mark.slow

PROD_ENV = {
    "DJANGO_SETTINGS_MODULE": "claimportal.settings.prod",
    "SECRET_KEY": "a-long-random-production-secret-" + "x" * 40,
    "ALLOWED_HOSTS": "claims.example.test",
    "PUBLIC_BASE_URL": "https://claims.example.test",
    "DATABASE_URL": os.environ.get(
        "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/claimportal"
    ),
    "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    "CLAIMPORTAL_PREVIEW_DOMAIN": "claims-previews.test",
    "PATH": "/usr/bin:/bin",
}


def test_production_settings_pass_check_deploy_without_warnings(tmp_path):
    # A folder that does not exist yet, as in a fresh clone.
    env = {**PROD_ENV, "CLAIMPORTAL_VAR_DIR": str(tmp_path / "var")}
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", env=env, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    assert not (tmp_path / "var" / "secret_key").exists()  # prod makes no key


@pytest.mark.parametrize(
    ("unset", "named"),
    [
        (["DATABASE_URL"], "DATABASE_URL"),
        (["REDIS_URL"], "CELERY_BROKER_URL or REDIS_URL"),
        (["SECRET_KEY"], "SECRET_KEY"),
        (["ALLOWED_HOSTS", "SECRET_KEY"], "SECRET_KEY, ALLOWED_HOSTS"),
    ],
)
def test_production_refuses_to_start_naming_what_is_missing(unset, named):
    env = {k: v for k, v in PROD_ENV.items() if k not in unset}
    result = manage("check", env=env, timeout=120)
    assert result.returncode != 0
    assert f"Production settings need these in the environment: {named}." in (
        result.stderr
    )


def test_a_broker_url_alone_is_a_broker():
    env = {k: v for k, v in PROD_ENV.items() if k != "REDIS_URL"}
    env["CELERY_BROKER_URL"] = PROD_ENV["REDIS_URL"]
    result = manage("check", env=env, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("preview_domain", "why"),
    [
        ("example.test", "is the portal's host 'claims.example.test' or a parent"),
        ("w.claims.example.test", "lies under the portal's host"),
    ],
)
def test_production_refuses_previews_on_the_portals_own_domain(preview_domain, why):
    env = {
        **PROD_ENV,
        "PUBLIC_BASE_URL": "https://claims.example.test",
        "CLAIMPORTAL_PREVIEW_DOMAIN": preview_domain,
    }
    result = manage("check", env=env, timeout=120)
    assert result.returncode != 0
    assert why in result.stderr
    assert "that the portal reads" in result.stderr


@pytest.mark.parametrize(
    "entry",
    [
        "import claimportal.wsgi",
        "import claimportal.asgi",
        "from claimportal.celery import app; print(app.conf.broker_url)",
    ],
)
def test_entry_points_do_not_fall_back_to_development_settings(entry):
    """Started with nothing configured, a server or worker refuses (production
    settings) instead of serving on SQLite with a made-up key."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", entry],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Production settings need these in the environment: DATABASE_URL" in (
        result.stderr
    )
