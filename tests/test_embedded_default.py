"""With no configuration at all, claimportal runs on its embedded defaults
(SQLite, a file cache and a file broker): a newcomer's first handoff works there
as it does on PostgreSQL and Redis, which the rest of the suite proves."""

import json

import pytest

from tests.conftest import manage

pytestmark = pytest.mark.slow

# Run in a fresh process on the development settings: an agent provisions over
# the API, a deploy's rows appear, and a person opens the claim link.
HANDOFF = """
import json
from django.test import Client
from django.utils import timezone
from accounts.services import kv, pow
from accounts.models import CloudAccount
from tests.claim_builders import full_deploy

agent = Client(HTTP_HOST="localhost")
challenge = agent.post(
    "/client/v4/provisioning/previews/challenge", "{}", content_type="application/json"
).json()["result"]
solution = pow.solve(seed=challenge["seed"], k=challenge["k"], g=challenge["g"])
made = agent.post(
    "/client/v4/provisioning/previews",
    json.dumps({
        "acceptTermsOfService": "yes",
        "challengeToken": challenge["challengeToken"],
        "solution": {"checkpoints": solution},
    }),
    content_type="application/json",
).json()["result"]
account = CloudAccount.objects.get(pk=made["account"]["id"])
full_deploy(account)

person = Client(HTTP_HOST="localhost")
opened = person.get(made["claim"]["url"].removeprefix("http://localhost:8000"))
first = person.get("/claim/")
kv.put_value(
    namespace=account.kv_namespaces.get(), key="late", value=b"v", now=timezone.now()
)
again = person.get("/claim/")
row = "<td>hello-worker-cache</td><td>{}</td>"
print(json.dumps({
    "opened": opened.status_code,
    "page": first.status_code,
    "shows_kv": row.format(3) in first.content.decode(),
    "counts_the_new_key": row.format(4) in again.content.decode(),
}))
"""


def embedded(var_dir: str) -> dict[str, str]:
    """No database, cache or broker named: the embedded defaults."""
    return {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "claimportal.settings.dev",
        "CLAIMPORTAL_VAR_DIR": var_dir,
    }


def test_a_handoff_works_on_the_embedded_defaults(tmp_path):
    var_dir = str(tmp_path / "var")
    migrated = manage("migrate", "--no-input", env=embedded(var_dir))
    assert migrated.returncode == 0, migrated.stderr

    handoff = manage("shell", "-c", HANDOFF, env=embedded(var_dir))

    assert handoff.returncode == 0, handoff.stderr
    assert json.loads(handoff.stdout.splitlines()[-1]) == {
        "opened": 302,
        "page": 200,
        "shows_kv": True,
        "counts_the_new_key": True,
    }
