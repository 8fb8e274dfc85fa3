"""The real wrangler deploys, and redeploys, Workers into a temporary account;
then the database and storage hold exactly what it uploaded."""

import re
import shutil
import tomllib
from pathlib import Path

import pytest

from accounts.models import (
    AssetBlob,
    AuditEvent,
    CloudAccount,
    D1Database,
    DurableObjectNamespace,
    KVNamespace,
    Queue,
    QueueConsumer,
    WorkerScript,
    WorkerSecret,
    WorkerVersion,
)
from accounts.services.assets import asset_hash, read_blob

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("wrangler-deploy")]

PROJECTS = Path(__file__).resolve().parent / "projects"


def project(name: str, tmp_path: Path) -> Path:
    return shutil.copytree(PROJECTS / name, tmp_path / name)


def deploy(wrangler, where: Path, *extra: str):
    run = wrangler("deploy", "--temporary", *extra, cwd=where, timeout=240)
    assert run.returncode == 0, run.output
    return run


def account_of(wrangler) -> CloudAccount:
    cached = tomllib.loads(wrangler.cache_file.read_text())
    return CloudAccount.objects.get(pk=cached["account"]["id"])


def bundle(wrangler, where: Path, outdir: Path) -> dict[str, bytes]:
    """What wrangler uploads, built offline by a dry run."""
    run = wrangler("deploy", "--dry-run", "--outdir", str(outdir), cwd=where)
    assert run.returncode == 0, run.output
    return {p.name: p.read_bytes() for p in outdir.iterdir() if p.is_file()}


def stored_modules(version: WorkerVersion) -> dict[str, bytes]:
    return {m.name.removeprefix("./"): bytes(m.content) for m in version.modules.all()}


def assert_assets_match(account: CloudAccount, version: WorkerVersion, public: Path):
    """Every manifest entry is a stored blob whose bytes are the file's and
    whose hash is wrangler's hash of them."""
    manifest = version.assets["manifest"]
    for path, entry in manifest.items():
        data = (public / path.lstrip("/")).read_bytes()
        blob = AssetBlob.objects.get(account=account, hash=entry["hash"])
        assert read_blob(blob=blob) == data
        assert asset_hash(data, path=path) == entry["hash"] == blob.hash
        assert entry["size"] == len(data) == blob.size
        assert blob.storage_name.startswith(f"accounts/{account.pk}/")
    return manifest


def test_plain_worker_and_static_site_deploy_and_redeploy(wrangler, tmp_path):
    plain = project("plain", tmp_path)
    first = deploy(wrangler, plain)
    account = account_of(wrangler)
    host = f"plain-worker.{account.subdomain}.preview.localhost"
    assert host in first.stdout  # the preview host, not a workers.dev address
    assert "workers.dev" not in first.stdout
    script = WorkerScript.objects.get(account=account, name="plain-worker")
    assert script.workers_dev_enabled is True
    version_id = re.search(r"Current Version ID: (\S+)", first.stdout).group(1)
    assert str(script.current_version_id) == version_id
    uploaded = bundle(wrangler, plain, tmp_path / "plain-out")
    modules = stored_modules(script.current_version)
    assert modules["index.js"] == uploaded["index.js"]

    # Nothing changed: a new version through the versions API, nothing duplicated.
    deploy(wrangler, plain)
    script.refresh_from_db()
    assert script.current_version.number == 2
    assert stored_modules(script.current_version) == modules

    # A changed script: a new version with the new bytes.
    source = plain / "src" / "index.js"
    source.write_text(source.read_text().replace("Hello from", "Hi again from"))
    deploy(wrangler, plain)
    script.refresh_from_db()
    assert script.current_version.number == 3
    changed = bundle(wrangler, plain, tmp_path / "plain-out-2")
    assert stored_modules(script.current_version)["index.js"] == changed["index.js"]
    assert b"Hi again from" in changed["index.js"]
    assert WorkerScript.objects.filter(account=account).count() == 1
    assert (
        AuditEvent.objects.filter(
            account=account, kind=AuditEvent.Kind.DEPLOYED
        ).count()
        == 3
    )

    # wrangler delete checks references and tail producers, then deletes.
    deleted = wrangler("delete", "--temporary", cwd=plain)
    assert deleted.returncode == 0, deleted.output
    assert "Successfully deleted plain-worker" in deleted.stdout
    assert not WorkerScript.objects.filter(account=account).exists()

    # A static-assets-only site, in the same account.
    site = project("site", tmp_path)
    deploy(wrangler, site)
    static = WorkerScript.objects.get(account=account, name="static-site")
    version = static.current_version
    assert version.main_module == "" and not version.modules.exists()
    manifest = assert_assets_match(account, version, site / "public")
    assert sorted(manifest) == ["/docs/index.html", "/index.html", "/pixel.gif"]
    config = version.assets["config"]
    assert config["html_handling"] == "drop-trailing-slash"
    assert config["_headers"] == (site / "public" / "_headers").read_text()
    assert config["_redirects"] == (site / "public" / "_redirects").read_text()
    blobs = AssetBlob.objects.filter(account=account).count()

    deploy(wrangler, site)  # unchanged: no blob is sent again
    static.refresh_from_db()
    assert static.current_version.number == 2
    assert AssetBlob.objects.filter(account=account).count() == blobs

    (site / "public" / "index.html").write_text("<!doctype html>\n<h1>New</h1>\n")
    deploy(wrangler, site)
    static.refresh_from_db()
    assert static.current_version.number == 3
    assert_assets_match(account, static.current_version, site / "public")
    assert AssetBlob.objects.filter(account=account).count() == blobs + 1


def test_full_worker_deploys_with_every_binding_and_redeploys(wrangler, tmp_path):
    full = project("full", tmp_path)
    first = deploy(wrangler, full, "--secrets-file", "secrets.json")
    account = account_of(wrangler)
    for line in (
        f"full-worker.{account.subdomain}.preview.localhost",
        "Producer for jobs",
        "Consumer for jobs",
        "schedule: */5 * * * *",
    ):
        assert line in first.stdout, first.output
    script = WorkerScript.objects.get(account=account, name="full-worker")
    version = script.current_version
    bindings = {b["name"]: b for b in version.bindings}
    assert (
        bindings["CACHE"]["namespace_id"] == KVNamespace.objects.get(account=account).id
    )
    database = D1Database.objects.get(account=account, name="full-db")
    assert bindings["DB"]["id"] == str(database.uuid)
    assert bindings["JOBS"]["queue_name"] == "jobs"
    assert bindings["LIMITS"]["json"] == {"max": 3}
    assert bindings["ASSETS"]["type"] == "assets"
    assert WorkerSecret.objects.get(script=script, name="API_KEY").value == (
        "not-a-real-secret"
    )
    namespace = DurableObjectNamespace.objects.get(script=script)
    assert (namespace.class_name, namespace.use_sqlite) == ("Counter", True)
    assert script.migration_tag == "v1"
    assert [s["cron"] for s in script.cron_schedules] == ["*/5 * * * *"]

    uploaded = bundle(wrangler, full, tmp_path / "full-out")
    modules = stored_modules(version)
    assert modules["index.js"] == uploaded["index.js"]
    text = next(name for name in modules if name.endswith("hello.txt"))
    assert modules[text] == (full / "src" / "hello.txt").read_bytes()
    types = {m.name.removeprefix("./"): m.content_type for m in version.modules.all()}
    assert types["index.js"] == "application/javascript+module"
    assert types[text] == "text/plain"
    manifest = assert_assets_match(account, version, full / "public")
    assert "/_headers" not in manifest
    assert version.assets["config"]["run_worker_first"] == ["/api/*"]
    assert version.assets["config"]["_redirects"] == "/old /new 301\n"

    # Redeploy, nothing changed: inherit, no duplicate resources.
    deploy(wrangler, full)
    script.refresh_from_db()
    assert script.current_version.number == 2
    assert {b["name"]: b for b in script.current_version.bindings} == bindings
    assert WorkerSecret.objects.filter(script=script).count() == 1
    for model in (KVNamespace, D1Database, Queue):
        assert model.objects.filter(account=account).count() == 1
    assert DurableObjectNamespace.objects.filter(account=account).count() == 1
    assert QueueConsumer.objects.filter(queue__account=account).count() == 1

    source = full / "src" / "index.js"
    source.write_text(source.read_text().replace("queued", "enqueued"))
    deploy(wrangler, full)
    script.refresh_from_db()
    assert script.current_version.number == 3
    assert b"enqueued" in stored_modules(script.current_version)["index.js"]
