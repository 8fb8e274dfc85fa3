"""An account holding one of every kind of resource, with real bytes in storage:
what a purge must leave nothing of."""

import sqlite3
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from accounts import models as m

# Every table holding an account's resources, and how its rows reach the account.
RESOURCE_TABLES = {
    m.WorkerScript: "account",
    m.WorkerVersion: "script__account",
    m.WorkerModule: "version__script__account",
    m.WorkerDeployment: "script__account",
    m.WorkerSecret: "script__account",
    m.WorkerTail: "script__account",
    m.WorkerEvent: "script__account",
    m.DurableObjectNamespace: "account",
    m.KVNamespace: "account",
    m.KVEntry: "namespace__account",
    m.D1Database: "account",
    m.D1QueryStats: "database__account",
    m.Queue: "account",
    m.QueueConsumer: "queue__account",
    m.QueueMessage: "queue__account",
    m.EventSubscription: "account",
    m.HyperdriveConfig: "account",
    m.Certificate: "account",
    m.AssetUploadSession: "account",
    m.AssetBlob: "account",
    m.PreviewPlacement: "account",
}


def resource_rows(account_id: str | None = None) -> dict[str, int]:
    """Rows per resource table: of one account, or of all when None."""
    return {
        model.__name__: (
            model.objects.all()
            if account_id is None
            else model.objects.filter(**{path: account_id})
        ).count()
        for model, path in RESOURCE_TABLES.items()
    }


def stored_files(account_id: str) -> list[Path]:
    root = Path(default_storage.path(f"accounts/{account_id}"))
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@dataclass(frozen=True)
class Stocked:
    account: m.CloudAccount
    stored_bytes: int
    d1_name: str


def _sqlite_file(rows: int) -> bytes:
    """A real SQLite database with a table of ``rows`` rows, as bytes."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "d1.sqlite3"
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
            db.executemany(
                "INSERT INTO notes (body) VALUES (?)",
                [(f"note {i}",) for i in range(rows)],
            )
        db.close()
        return path.read_bytes()


def stock_account(account: m.CloudAccount, *, now: datetime) -> Stocked:
    """Give ``account`` a Worker (versions, modules, deployment, secret, Durable
    Object class), KV entries, a D1 database with rows, a queue with a consumer
    and a message, a Hyperdrive config, a certificate, an asset upload session,
    asset blobs, and a stray file a failed upload left under its prefix."""
    prefix = f"accounts/{account.pk}"
    script = m.WorkerScript.objects.create(account=account, name="hello")
    runtime, _ = m.PreviewRuntime.objects.get_or_create(
        name="main", defaults={"state_dir": "/srv/preview", "seen_at": now}
    )
    m.PreviewPlacement.objects.create(account=account, runtime=runtime, placed_at=now)
    version = m.WorkerVersion.objects.create(script=script, number=1)
    m.WorkerModule.objects.create(
        version=version,
        name="index.js",
        content_type="application/javascript+module",
        content=b"export default { fetch() { return new Response('hi') } }",
    )
    script.current_version = version
    script.save(update_fields=["current_version"])
    m.WorkerDeployment.objects.create(
        script=script, versions=[{"version_id": str(version.pk), "percentage": 100}]
    )
    m.WorkerSecret.objects.create(script=script, name="API_KEY", value="s3cret")
    m.WorkerTail.objects.create(
        script=script, key_hash=uuid.uuid4().hex, expires_at=now + timedelta(hours=1)
    )
    m.WorkerEvent.objects.create(script=script, data={"logs": []})
    m.DurableObjectNamespace.objects.create(
        account=account, script=script, class_name="Counter"
    )

    kv = m.KVNamespace.objects.create(account=account, title="hello-CACHE")
    m.KVEntry.objects.bulk_create(
        m.KVEntry(namespace=kv, key=f"k{i}", value=b"v" * 10) for i in range(3)
    )

    d1_bytes = _sqlite_file(rows=25)
    d1 = m.D1Database(account=account, name="notes")
    d1.storage_name = default_storage.save(
        f"{prefix}/d1/{d1.uuid}.sqlite3", ContentFile(d1_bytes)
    )
    d1.file_size = len(d1_bytes)
    d1.table_count = 1
    d1.save()
    m.D1QueryStats.objects.create(
        database=d1, hour=now.replace(minute=0, second=0, microsecond=0), query="x"
    )

    queue = m.Queue.objects.create(account=account, name="jobs")
    m.QueueConsumer.objects.create(queue=queue, script_name="hello")
    m.QueueMessage.objects.create(queue=queue, body=b'{"job": 1}')
    m.EventSubscription.objects.create(
        account=account,
        name="kv-events",
        source_type="kv",
        source={"type": "kv"},
        events=["namespace.created"],
        queue=queue,
    )
    m.HyperdriveConfig.objects.create(
        account=account,
        name="db",
        origin={"host": "db.example.com", "port": 5432, "database": "app"},
        password="pw",
    )
    m.Certificate.objects.create(
        account=account, kind=m.Certificate.Kind.MTLS, certificate="-----BEGIN…"
    )
    m.AssetUploadSession.objects.create(
        account=account,
        script_name="hello",
        manifest={"/index.html": {"hash": "a" * 32, "size": 11}},
        upload_token_hash=f"u{account.pk}",
        completion_token_hash=f"c{account.pk}",
        expires_at=now,
    )
    stored = len(d1_bytes)
    for digest, body in (("a" * 32, b"<h1>hi</h1>"), ("b" * 32, b"body{}")):
        name = default_storage.save(f"{prefix}/assets/{digest}", ContentFile(body))
        m.AssetBlob.objects.create(
            account=account, hash=digest, size=len(body), storage_name=name
        )
        stored += len(body)
    stray = b"half an upload"
    default_storage.save(f"{prefix}/assets/tmp-upload", ContentFile(stray))
    stored += len(stray)
    return Stocked(account=account, stored_bytes=stored, d1_name=d1.storage_name)
