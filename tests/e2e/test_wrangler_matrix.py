"""Every wrangler 4.164.0 command definition for the products temporary
accounts carry, run with the real wrangler (``--temporary``, ``--remote``
where it defaults to local) against a live server, each effect read back
through claimportal's API.

One account, one live server and one deployed Worker serve the whole module;
each product's commands run in order in one test. ``COVERAGE`` names the test
that runs each definition, here or in another file, and a test checks it
against the definitions in wrangler's own bundle, so it cannot drift.
"""

import http.client
import json
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.test.utils import override_settings
from pytest_django.live_server_helper import LiveServer

from accounts.models import HyperdriveConfig
from tests.cloudapi import make_pem
from tests.e2e.conftest import Wrangler, WranglerRun, node_tools_dir

# Plain django_db: the tests read only through the API, and the module's rows
# (written by the live server) must outlive each test; the module flushes them.
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db,
    pytest.mark.xdist_group("wrangler-matrix"),
]

T = "--temporary"
E2E = Path(__file__).resolve().parent
HERE = "test_wrangler_matrix.py"
WORKERS = f"{HERE}::test_workers_versions_deployments_rollback_and_triggers"
D1 = f"{HERE}::test_d1_lists_informs_migrates_reports_and_deletes"
KV = f"{HERE}::test_kv_keys_bulk_and_namespaces"
QUEUES = f"{HERE}::test_queues_consumers_delivery_and_purge"
HYPERDRIVE = f"{HERE}::test_hyperdrive_lists_updates_and_deletes"
CERT = f"{HERE}::test_cert_certificate_authorities_and_delete"
SECRETS = (
    "test_wrangler_secrets.py::"
    "test_secret_commands_deploy_a_new_version_the_preview_serves"
)
VERSION_SECRETS = (
    "test_wrangler_secrets.py::"
    "test_versions_secret_commands_make_versions_deployed_only_when_asked"
)
DATA = "test_wrangler_data.py::test_wrangler_data_commands_against_claimportal"
COMPAT = (
    "test_wrangler_compat.py::"
    "test_time_travel_subscriptions_and_delete_with_the_real_wrangler"
)
WRANGLERS_OWN_LIMIT = "wrangler's own limit: exits with 'renamed' before any API call"

# Each in-scope command definition, and the test that runs it and checks its
# effect. Two definitions answer to two names each in wrangler
# (`queues consumer add` is also `queues consumer worker add`, and `remove`).
COVERAGE = {
    "deploy": "test_wrangler_deploy.py::"
    "test_plain_worker_and_static_site_deploy_and_redeploy",
    "delete": COMPAT,
    "rollback": WORKERS,
    "tail": "test_wrangler_tail.py::"
    "test_wrangler_tail_streams_events_through_filters_to_two_tails",
    "triggers deploy": WORKERS,
    "versions list": WORKERS,
    "versions view": WORKERS,
    "versions upload": WORKERS,
    "versions deploy": VERSION_SECRETS,
    "versions secret put": VERSION_SECRETS,
    "versions secret bulk": VERSION_SECRETS,
    "versions secret delete": VERSION_SECRETS,
    "versions secret list": VERSION_SECRETS,
    "deployments list": WORKERS,
    "deployments status": WORKERS,
    "deployments view": WRANGLERS_OWN_LIMIT,
    "secret put": SECRETS,
    "secret bulk": SECRETS,
    "secret list": SECRETS,
    "secret delete": SECRETS,
    "d1 create": DATA,
    "d1 execute": DATA,
    "d1 export": DATA,
    "d1 info": D1,
    "d1 list": D1,
    "d1 delete": D1,
    "d1 insights": D1,
    "d1 migrations create": D1,
    "d1 migrations list": D1,
    "d1 migrations apply": D1,
    "d1 time-travel info": COMPAT,
    "d1 time-travel restore": COMPAT,
    "kv namespace create": DATA,
    "kv namespace list": DATA,
    "kv namespace rename": KV,
    "kv namespace delete": KV,
    "kv key put": DATA,
    "kv key get": DATA,
    "kv key list": KV,
    "kv key delete": KV,
    "kv bulk put": KV,
    "kv bulk get": KV,
    "kv bulk delete": KV,
    "queues create": DATA,
    "queues list": DATA,
    "queues info": QUEUES,
    "queues update": QUEUES,
    "queues delete": QUEUES,
    "queues purge": QUEUES,
    "queues pause-delivery": QUEUES,
    "queues resume-delivery": QUEUES,
    "queues consumer add": QUEUES,
    "queues consumer remove": QUEUES,
    "queues consumer list": QUEUES,
    "queues consumer worker list": QUEUES,
    "queues consumer http add": QUEUES,
    "queues consumer http list": QUEUES,
    "queues consumer http remove": QUEUES,
    "queues subscription create": COMPAT,
    "queues subscription list": COMPAT,
    "queues subscription get": COMPAT,
    "queues subscription update": COMPAT,
    "queues subscription delete": COMPAT,
    "hyperdrive create": DATA,
    "hyperdrive get": DATA,
    "hyperdrive list": HYPERDRIVE,
    "hyperdrive update": HYPERDRIVE,
    "hyperdrive delete": HYPERDRIVE,
    "cert upload mtls-certificate": DATA,
    "cert upload certificate-authority": CERT,
    "cert list": DATA,
    "cert delete": CERT,
}
IN_SCOPE = {
    "deploy",
    "delete",
    "rollback",
    "tail",
    "triggers",
    "versions",
    "deployments",
    "secret",
    "d1",
    "kv",
    "queues",
    "hyperdrive",
    "cert",
}
OUT_OF_SCOPE = {"r2", "turnstile", "containers"}  # test_wrangler_not_offered.py


def temporary_definitions() -> dict[str, list[str]]:
    """wrangler's command definitions that accept ``--temporary``, read from
    its bundle: each definition's variable, with the command names it is
    registered under."""
    bundle = node_tools_dir() / "node_modules" / "wrangler" / "wrangler-dist"
    source = (bundle / "cli.js").read_text()
    names: dict[str, list[str]] = {}
    for match in re.finditer(
        r'\{\s*command:\s*"wrangler ([^"]*)",\s*definition:\s*(\w+)\s*\}', source
    ):
        names.setdefault(match.group(2), []).append(match.group(1))
    starts = [
        (m.start(), m.group(1), m.group(2))
        for m in re.finditer(
            r"\b(\w+) = (createCommand|createNamespace|createAlias)\(", source
        )
    ]
    found = {}
    for (start, variable, kind), (end, _, _) in zip(
        starts, [*starts[1:], (len(source), "", "")], strict=True
    ):
        if kind == "createCommand" and "supportTemporary: true" in source[start:end]:
            found[variable] = names[variable]
    return found


def test_the_coverage_list_is_wranglers_own_definitions():
    definitions = temporary_definitions()
    in_scope = {
        variable: sorted(commands)
        for variable, commands in definitions.items()
        if commands[0].split()[0] in IN_SCOPE
    }
    out_of_scope = [c for c in definitions.values() if c[0].split()[0] in OUT_OF_SCOPE]
    assert len(in_scope) == 72 and len(out_of_scope) == 44
    assert len(definitions) == 116  # no product left unsorted
    # One name per definition: the first, in wrangler's own sort.
    assert sorted(COVERAGE) == sorted(commands[0] for commands in in_scope.values())
    for command, where in COVERAGE.items():
        if where == WRANGLERS_OWN_LIMIT:
            continue
        file, _, test = where.partition("::")
        text = (E2E / file).read_text()
        assert not test or f"def {test}(" in text, (command, where)
        called = r",\s*".join(f'"{word}"' for word in command.split())
        assert re.search(called, text), (command, where)


@dataclass
class Matrix:
    """The module's live server, its agent (wrangler with one home, so one
    temporary account) and that account's API."""

    url: str
    wrangler: Wrangler
    root: Path
    worker: Path

    def run(self, *args: str, cwd: Path | None = None) -> WranglerRun:
        result = self.wrangler(*args, T, cwd=cwd or self.worker, timeout=180)
        assert result.returncode == 0, (args, result.output)
        return result

    def json(self, *args: str, cwd: Path | None = None) -> Any:
        return json_out(self.run(*args, cwd=cwd))

    @property
    def account(self) -> dict[str, str]:
        return tomllib.loads(self.wrangler.cache_file.read_text())["account"]

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        """One call to the account's API with its token: (status, body)."""
        account = self.account
        connection = http.client.HTTPConnection(urlsplit(self.url).netloc, timeout=30)
        try:
            connection.request(
                method,
                f"/client/v4/accounts/{account['id']}/{path}",
                body=None if body is None else json.dumps(body),
                headers={
                    "Authorization": f"Bearer {account['apiToken']}",
                    "Content-Type": "application/json",
                },
            )
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(status, result) of an enveloped answer."""
        status, data = self.call(method, path, body)
        return status, json.loads(data)["result"]

    def get(self, path: str) -> Any:
        status, result = self.api("GET", path)
        assert status == 200, (path, result)
        return result


def json_out(result: WranglerRun) -> Any:
    """The JSON document wrangler printed on stdout, after any banner lines."""
    text = result.stdout
    start = min(i for i in (text.find("["), text.find("{")) if i >= 0)
    return json.JSONDecoder().raw_decode(text, start)[0]


WORKER = """
export default {
  async fetch() { return new Response("VERSION"); },
  async scheduled() {},
  async queue(batch) { batch.ackAll(); },
};
"""


def write_worker(folder: Path, version: str, crons: list[str]) -> None:
    (folder / "src").mkdir(parents=True, exist_ok=True)
    (folder / "src" / "index.js").write_text(WORKER.replace("VERSION", version))
    config = {
        "name": "matrix-worker",
        "main": "src/index.js",
        "compatibility_date": "2026-06-01",
        "triggers": {"crons": crons},
    }
    (folder / "wrangler.json").write_text(json.dumps(config))


@pytest.fixture(scope="module")
def matrix(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[Matrix]:
    """A live server, and a Worker deployed to a temporary account on it."""
    root = tmp_path_factory.mktemp("matrix")
    with django_db_blocker.unblock():
        server = LiveServer("localhost")
        settings = override_settings(
            PUBLIC_BASE_URL=server.url, MEDIA_ROOT=root / "media"
        )
        settings.enable()
        server._live_server_modified_settings.enable()
        try:
            worker = root / "worker"
            write_worker(worker, "v1", ["*/5 * * * *"])
            matrix = Matrix(
                url=server.url,
                wrangler=Wrangler(
                    api_base=f"{server.url}/client/v4", home=root / "agent"
                ),
                root=root,
                worker=worker,
            )
            matrix.run("deploy")
            yield matrix
        finally:
            server._live_server_modified_settings.disable()
            settings.disable()
            server.stop()
            # What a transactional test leaves: empty tables for the next test.
            call_command("flush", verbosity=0, interactive=False)


@pytest.fixture(autouse=True)
def _media_root(request, tmp_path) -> Path:
    """The module's files stay for the module (D1 databases live there)."""
    if "matrix" not in request.fixturenames:
        return tmp_path
    return request.getfixturevalue("matrix").root / "media"


def current_deployment(matrix: Matrix) -> dict[str, Any]:
    return matrix.get("workers/scripts/matrix-worker/deployments")["deployments"][0]


def test_workers_versions_deployments_rollback_and_triggers(matrix):
    [first] = matrix.get("workers/scripts/matrix-worker/versions")["items"]

    # versions upload: a second version, not deployed.
    write_worker(matrix.worker, "v2", ["*/5 * * * *"])
    uploaded = matrix.run("versions", "upload", "--message", "second")
    versions = matrix.get("workers/scripts/matrix-worker/versions")["items"]
    assert len(versions) == 2
    second = next(v for v in versions if v["id"] != first["id"])
    assert second["id"] in uploaded.output
    assert second["annotations"]["workers/message"] == "second"
    assert current_deployment(matrix)["versions"][0]["version_id"] == first["id"]

    listed = matrix.json("versions", "list", "--json")
    assert {v["id"] for v in listed} == {first["id"], second["id"]}
    viewed = matrix.json("versions", "view", second["id"], "--json")
    assert viewed["id"] == second["id"]
    assert viewed["annotations"]["workers/message"] == "second"

    matrix.run("versions", "deploy", f"{second['id']}@100%", "--yes")
    assert current_deployment(matrix)["versions"][0]["version_id"] == second["id"]

    deployments = matrix.json("deployments", "list", "--json")
    api = matrix.get("workers/scripts/matrix-worker/deployments")["deployments"]
    assert len(api) == 2  # the first deploy's, and this one
    assert sorted(d["id"] for d in deployments) == sorted(d["id"] for d in api)
    status = matrix.json("deployments", "status", "--json")
    assert status["id"] == api[0]["id"]
    assert status["versions"][0]["version_id"] == second["id"]

    # wrangler's own limit, before any API call.
    view = matrix.wrangler("deployments", "view", T, cwd=matrix.worker)
    assert view.returncode != 0 and "renamed" in view.output

    matrix.run("rollback", first["id"], "--message", "back to one", "--yes")
    rolled = current_deployment(matrix)
    assert rolled["versions"] == [{"version_id": first["id"], "percentage": 100}]
    assert rolled["annotations"]["workers/message"] == "back to one"

    matrix.run("triggers", "deploy", "--triggers", "0 * * * *")
    schedules = matrix.get("workers/scripts/matrix-worker/schedules")["schedules"]
    assert [s["cron"] for s in schedules] == ["0 * * * *"]


def test_d1_lists_informs_migrates_reports_and_deletes(matrix):
    work = matrix.root / "d1"
    work.mkdir()
    matrix.run("d1", "create", "matrixdb", cwd=work)
    [database] = [d for d in matrix.get("d1/database") if d["name"] == "matrixdb"]
    uuid = database["uuid"]
    listed = matrix.json("d1", "list", "--json", cwd=work)
    assert uuid in [d["uuid"] for d in listed]

    config = {
        "name": "matrix-d1",
        "compatibility_date": "2026-06-01",
        "d1_databases": [
            {"binding": "DB", "database_name": "matrixdb", "database_id": uuid}
        ],
    }
    (work / "wrangler.json").write_text(json.dumps(config))
    matrix.run("d1", "migrations", "create", "matrixdb", "notes", cwd=work)
    [migration] = (work / "migrations").iterdir()
    assert migration.name == "0001_notes.sql"
    migration.write_text("CREATE TABLE notes (body TEXT);\n")
    pending = matrix.run("d1", "migrations", "list", "matrixdb", "--remote", cwd=work)
    assert "0001_notes.sql" in pending.output
    matrix.run("d1", "migrations", "apply", "matrixdb", "--remote", cwd=work)
    status, tables = matrix.api(
        "POST",
        f"d1/database/{uuid}/query",
        {"sql": "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"},
    )
    assert status == 200, tables
    names = [row["name"] for row in tables[0]["results"]]
    assert "notes" in names and "d1_migrations" in names
    done = matrix.run("d1", "migrations", "list", "matrixdb", "--remote", cwd=work)
    assert "No migrations to apply" in done.output

    info = matrix.json("d1", "info", "matrixdb", "--json", cwd=work)
    assert info["uuid"] == uuid
    api = matrix.get(f"d1/database/{uuid}")
    assert info["num_tables"] == api["num_tables"] >= 2

    insights = matrix.json("d1", "insights", "matrixdb", "--json", cwd=work)
    assert any("CREATE TABLE notes" in q["query"] for q in insights), insights

    matrix.run("d1", "delete", "matrixdb", "-y", cwd=work)
    status, _ = matrix.api("GET", f"d1/database/{uuid}")
    assert status == 404


def test_kv_keys_bulk_and_namespaces(matrix):
    work = matrix.root / "kv"
    work.mkdir()
    matrix.run("kv", "namespace", "create", "matrixkv", cwd=work)
    [namespace] = [
        n for n in matrix.get("storage/kv/namespaces") if n["title"] == "matrixkv"
    ]
    ns = ("--namespace-id", namespace["id"], "--remote")
    values = f"storage/kv/namespaces/{namespace['id']}/values"

    (work / "put.json").write_text(
        json.dumps([{"key": "a", "value": "one"}, {"key": "b", "value": "two"}])
    )
    matrix.run("kv", "bulk", "put", "put.json", *ns, cwd=work)
    assert matrix.call("GET", f"{values}/a") == (200, b"one")
    assert matrix.call("GET", f"{values}/b") == (200, b"two")

    keys = matrix.json("kv", "key", "list", *ns, cwd=work)
    assert sorted(k["name"] for k in keys) == ["a", "b"]

    (work / "get.json").write_text(json.dumps(["a", "b"]))
    got = matrix.json("kv", "bulk", "get", "get.json", *ns, cwd=work)
    assert got == {"a": "one", "b": "two"}  # the API's values, as Cloudflare's

    matrix.run("kv", "key", "delete", "a", *ns, cwd=work)
    status, _ = matrix.api("GET", f"{values}/a")
    assert status == 404

    (work / "delete.json").write_text(json.dumps(["b"]))
    matrix.run("kv", "bulk", "delete", "delete.json", "--force", *ns, cwd=work)
    assert matrix.get(f"storage/kv/namespaces/{namespace['id']}/keys") == []

    matrix.run(
        "kv",
        "namespace",
        "rename",
        "--namespace-id",
        namespace["id"],
        "--new-name",
        "renamedkv",
        cwd=work,
    )
    assert matrix.get(f"storage/kv/namespaces/{namespace['id']}")["title"] == (
        "renamedkv"
    )
    matrix.run(
        "kv", "namespace", "delete", "--namespace-id", namespace["id"], "-y", cwd=work
    )
    status, _ = matrix.api("GET", f"storage/kv/namespaces/{namespace['id']}")
    assert status == 404


def pull_now(matrix: Matrix, path: str) -> dict[str, Any]:
    """Pull without a lease: the messages stay for the next pull."""
    body = {"batch_size": 10, "visibility_timeout_ms": 0}
    status, pulled = matrix.api("POST", f"{path}/messages/pull", body)
    assert status == 200, pulled
    return pulled


def test_queues_consumers_delivery_and_purge(matrix):
    work = matrix.root / "queues"
    work.mkdir()
    matrix.run("queues", "create", "matrixq", cwd=work)
    [queue] = [q for q in matrix.get("queues") if q["queue_name"] == "matrixq"]
    path = f"queues/{queue['queue_id']}"

    info = matrix.run("queues", "info", "matrixq", cwd=work)
    assert queue["queue_id"] in info.output

    retention = ("--message-retention-period-secs", "7200")
    matrix.run("queues", "update", "matrixq", *retention, cwd=work)
    assert matrix.get(path)["settings"]["message_retention_period"] == 7200

    matrix.run(
        "queues",
        "consumer",
        "add",
        "matrixq",
        "matrix-worker",
        "--batch-size",
        "7",
        cwd=work,
    )
    [consumer] = matrix.get(f"{path}/consumers")
    assert consumer["script"] == "matrix-worker"
    assert consumer["settings"]["batch_size"] == 7
    listed = matrix.json("queues", "consumer", "list", "matrixq", "--json", cwd=work)
    assert [c["script"] for c in listed] == ["matrix-worker"]
    workers = matrix.json(
        "queues", "consumer", "worker", "list", "matrixq", "--json", cwd=work
    )
    assert workers == listed
    matrix.run("queues", "consumer", "remove", "matrixq", "matrix-worker", cwd=work)
    assert matrix.get(f"{path}/consumers") == []

    matrix.run(
        "queues",
        "consumer",
        "http",
        "add",
        "matrixq",
        "--visibility-timeout-secs",
        "40",
        cwd=work,
    )
    [pull] = matrix.get(f"{path}/consumers")
    assert pull["type"] == "http_pull"
    assert pull["settings"]["visibility_timeout_ms"] == 40000
    listed = matrix.json(
        "queues", "consumer", "http", "list", "matrixq", "--json", cwd=work
    )
    assert [c["consumer_id"] for c in listed] == [pull["consumer_id"]]

    # purge, while the pull consumer can show what the queue holds.
    status, _ = matrix.api("POST", f"{path}/messages", {"body": "hello"})
    assert status == 200
    assert len(pull_now(matrix, path)["messages"]) == 1
    matrix.run("queues", "purge", "matrixq", "--force", cwd=work)
    assert pull_now(matrix, path) == {"messages": [], "message_backlog_count": 0}

    matrix.run("queues", "consumer", "http", "remove", "matrixq", cwd=work)
    assert matrix.get(f"{path}/consumers") == []

    matrix.run("queues", "pause-delivery", "matrixq", cwd=work)
    assert matrix.get(path)["settings"]["delivery_paused"] is True
    matrix.run("queues", "resume-delivery", "matrixq", cwd=work)
    assert matrix.get(path)["settings"]["delivery_paused"] is False

    matrix.run("queues", "delete", "matrixq", cwd=work)
    status, _ = matrix.api("GET", path)
    assert status == 404


def test_hyperdrive_lists_updates_and_deletes(matrix):
    work = matrix.root / "hyperdrive"
    work.mkdir()
    matrix.run(
        "hyperdrive",
        "create",
        "matrixhd",
        "--connection-string=postgres://user:s3cret@127.0.0.1:5432/app",
        cwd=work,
    )
    [config] = [c for c in matrix.get("hyperdrive/configs") if c["name"] == "matrixhd"]
    listed = matrix.run("hyperdrive", "list", cwd=work)
    assert config["id"] in listed.output and "s3cret" not in listed.output

    matrix.run(
        "hyperdrive",
        "update",
        config["id"],
        "--name",
        "renamedhd",
        "--origin-password",
        "n3w",
        "--max-age",
        "30",
        cwd=work,
    )
    updated = matrix.get(f"hyperdrive/configs/{config['id']}")
    # The API never shows a password; the stored one is the new one.
    assert HyperdriveConfig.objects.get(pk=config["id"]).password == "n3w"
    assert updated["name"] == "renamedhd"
    assert updated["caching"]["max_age"] == 30
    assert updated["origin"]["host"] == "127.0.0.1"

    matrix.run("hyperdrive", "delete", config["id"], cwd=work)
    status, _ = matrix.api("GET", f"hyperdrive/configs/{config['id']}")
    assert status == 404


def test_cert_certificate_authorities_and_delete(matrix):
    work = matrix.root / "cert"
    work.mkdir()
    ca, _key = make_pem(work, "matrix-ca")
    matrix.run(
        "cert",
        "upload",
        "certificate-authority",
        "--ca-cert",
        ca.name,
        "--name",
        "matrix-ca",
        cwd=work,
    )
    [certificate] = [
        c for c in matrix.get("mtls_certificates") if c["name"] == "matrix-ca"
    ]
    assert certificate["ca"] is True
    matrix.run("cert", "delete", "--name", "matrix-ca", cwd=work)
    status, _ = matrix.api("GET", f"mtls_certificates/{certificate['id']}")
    assert status == 404
