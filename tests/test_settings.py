"""Production settings: strict without secrets, clean under check --deploy."""

import pytest

from tests.conftest import manage

pytestmark = pytest.mark.slow

PROD_ENV = {
    "DJANGO_SETTINGS_MODULE": "claimportal.settings.prod",
    "SECRET_KEY": "a-long-random-production-secret-" + "x" * 40,
    "ALLOWED_HOSTS": "claims.example.test",
    "PUBLIC_BASE_URL": "https://claims.example.test",
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


def test_production_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in PROD_ENV.items() if k != "SECRET_KEY"}
    result = manage("check", env=env, timeout=120)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
