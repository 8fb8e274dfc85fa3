"""The real wrangler 4.164.0 manages an account's data: D1, KV, Queues,
Hyperdrive, certificates, and is told clearly that R2 is not offered."""

import json

import pytest

from accounts.models import (
    Certificate,
    CloudAccount,
    D1Database,
    HyperdriveConfig,
    KVEntry,
    KVNamespace,
    Queue,
)
from tests.cloudapi import make_pem

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

T = "--temporary"


def run(wrangler, *args, cwd=None):
    result = wrangler(*args, T, cwd=cwd)
    assert result.returncode == 0, result.output
    return result


def json_out(result):
    """The JSON document wrangler printed on stdout (after any banner lines)."""
    text = result.stdout
    return json.loads(
        text[min(i for i in (text.find("["), text.find("{")) if i >= 0) :]
    )


def test_wrangler_data_commands_against_claimportal(wrangler, tmp_path):
    work = tmp_path / "project"
    work.mkdir()

    # D1: create, run SQL for real with --command (/query) and --file (/import).
    created = run(wrangler, "d1", "create", "agentdb", cwd=work)
    database = D1Database.objects.get(name="agentdb")
    assert str(database.uuid) in created.output
    account = CloudAccount.objects.get()
    assert database.account == account

    run(
        wrangler,
        "d1",
        "execute",
        "agentdb",
        "--remote",
        "--command",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); "
        "INSERT INTO users (name) VALUES ('ada'), ('bob')",
        cwd=work,
    )
    (work / "seed.sql").write_text(
        "INSERT INTO users (name) VALUES ('cy');\n"
        "INSERT INTO users (name) VALUES ('it''s; fine');\n"
    )
    imported = run(
        wrangler, "d1", "execute", "agentdb", "--remote", "--file", "seed.sql", cwd=work
    )
    assert "Executed 2 queries" in imported.output
    selected = run(
        wrangler,
        "d1",
        "execute",
        "agentdb",
        "--remote",
        "--json",
        "--command",
        "SELECT name FROM users ORDER BY id",
        cwd=work,
    )
    [result] = json_out(selected)
    assert [row["name"] for row in result["results"]] == [
        "ada",
        "bob",
        "cy",
        "it's; fine",
    ]
    database.refresh_from_db()
    assert database.table_count == 1
    assert database.file_size > 0

    bad = wrangler(
        "d1", "execute", "agentdb", "--remote", T, "--command", "SELEC 1", cwd=work
    )
    assert bad.returncode == 1
    assert 'near "SELEC": syntax error' in bad.output
    assert "[code: 7500]" in bad.output

    run(
        wrangler,
        "d1",
        "export",
        "agentdb",
        "--remote",
        "--output",
        "dump.sql",
        cwd=work,
    )
    assert (
        "INSERT INTO \"users\" VALUES(4,'it''s; fine');"
        in (work / "dump.sql").read_text()
    )

    # KV: namespaces, and a value round trip through --remote.
    created_kv = run(wrangler, "kv", "namespace", "create", "agentkv", cwd=work)
    namespace_id = KVNamespace.objects.get(account=account, title="agentkv").id
    assert namespace_id in created_kv.output
    listed = json_out(run(wrangler, "kv", "namespace", "list", cwd=work))
    assert [(n["id"], n["title"]) for n in listed] == [(namespace_id, "agentkv")]
    run(
        wrangler,
        "kv",
        "key",
        "put",
        "greeting/ü",
        "hello from kv",
        "--namespace-id",
        namespace_id,
        "--remote",
        cwd=work,
    )
    got = run(
        wrangler,
        "kv",
        "key",
        "get",
        "greeting/ü",
        "--namespace-id",
        namespace_id,
        "--remote",
        "--text",
        cwd=work,
    )
    assert got.stdout.strip().endswith("hello from kv")
    assert bytes(KVEntry.objects.get(key="greeting/ü").value) == b"hello from kv"

    # Queues.
    run(wrangler, "queues", "create", "jobs", cwd=work)
    queues = run(wrangler, "queues", "list", cwd=work)
    assert "jobs" in queues.stdout
    assert Queue.objects.get(account=account).name == "jobs"

    # Hyperdrive: the id is printed, the password is kept and never shown.
    hyperdrive = run(
        wrangler,
        "hyperdrive",
        "create",
        "hd1",
        "--connection-string=postgres://user:s3cret@127.0.0.1:5432/app",
        cwd=work,
    )
    config = HyperdriveConfig.objects.get(account=account)
    assert config.id in hyperdrive.output
    assert config.password == "s3cret"
    shown = run(wrangler, "hyperdrive", "get", config.id, cwd=work)
    assert '"host": "127.0.0.1"' in shown.output
    assert "s3cret" not in shown.output

    # Certificates: upload an mTLS pair, list it.
    cert, key = make_pem(work, "agent-client")
    uploaded = run(
        wrangler,
        "cert",
        "upload",
        "mtls-certificate",
        "--cert",
        cert.name,
        "--key",
        key.name,
        "--name",
        "client",
        cwd=work,
    )
    certificate = Certificate.objects.get(account=account)
    assert f"ID: {certificate.id}" in uploaded.output
    assert "Issuer: O=Claim Tests, CN=agent-client" in uploaded.output
    assert "Name: client" in run(wrangler, "cert", "list", cwd=work).output

    # R2: refused with our message, and nothing half-made.
    r2 = wrangler("r2", "bucket", "create", "files", T, cwd=work)
    assert r2.returncode == 1
    assert "R2 is not available on temporary accounts" in r2.output
    assert "[code: 10042]" in r2.output
