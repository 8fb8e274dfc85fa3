"""CLAIMPORTAL_DEMO=1: a 5-minute window and verification mail on the console,
read by the settings as a fresh process would read them."""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

PRINT = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'window': s.CLAIMPORTAL_CLAIM_WINDOW.total_seconds(), "
    "'demo': s.CLAIMPORTAL_DEMO, 'mail': s.MAILERS['default']['BACKEND']}))"
)


def settings_with(**env: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PRINT],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "claimportal.settings.dev",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("env", "window", "demo"),
    [
        ({}, 60, False),
        ({"CLAIMPORTAL_DEMO": "1"}, 5, True),
        # An explicit window still wins over the demo's.
        ({"CLAIMPORTAL_DEMO": "1", "CLAIMPORTAL_CLAIM_WINDOW_MINUTES": "2"}, 2, True),
    ],
)
def test_demo_mode_shortens_the_window(env, window, demo):
    found = settings_with(**env)
    assert found["window"] == window * 60
    assert found["demo"] is demo


def test_demo_mode_prints_verification_mail_to_the_console():
    assert "Console" in settings_with(CLAIMPORTAL_DEMO="1")["mail"]
