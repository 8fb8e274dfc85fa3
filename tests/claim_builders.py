"""Rows a deploy would have written, made with the ORM, for the claim pages'
tests and benchmark. Values that must never be shown carry a marker."""

from datetime import timedelta

from django.utils import timezone

from accounts.models import (
    Certificate,
    CloudAccount,
    D1Database,
    DurableObjectNamespace,
    HyperdriveConfig,
    KVEntry,
    KVNamespace,
    Queue,
    QueueConsumer,
    WorkerDeployment,
    WorkerScript,
    WorkerSecret,
    WorkerVersion,
    version_summary,
)

# Appears in stored values only: a page containing it leaked a value.
NEVER_SHOWN = "never-shown-7f3a"

OTHER_KINDS = ("kv", "d1", "queue", "hyperdrive", "certificate")


def full_deploy(account: CloudAccount, name: str = "hello-worker") -> WorkerScript:
    """What wrangler's fullest deploy leaves: a Worker bound to one of every
    resource kind (KV with keys, D1, a Durable Object, a queue it produces to
    and consumes, Hyperdrive, an mTLS certificate), vars, secrets, assets."""
    kv = KVNamespace.objects.create(account=account, title=f"{name}-cache")
    KVEntry.objects.bulk_create(
        KVEntry(namespace=kv, key=f"k{i}", value=NEVER_SHOWN.encode()) for i in range(3)
    )
    queue = Queue.objects.create(account=account, name=f"{name}-jobs")
    script = _worker(
        account,
        name,
        kv=kv,
        d1=D1Database.objects.create(
            account=account, name=f"{name}-db", table_count=2, file_size=24576
        ),
        queue=queue,
        hyperdrive=_hyperdrive(account, f"{name}-pg"),
        cert=_certificate(account, f"{name}-cert"),
    )
    DurableObjectNamespace.objects.create(
        account=account, script=script, class_name="Counter"
    )
    QueueConsumer.objects.create(queue=queue, script_name=name)
    return script


def add_resources(account: CloudAccount, count: int) -> None:
    """Exactly ``count`` listed resources: every sixth a Worker, bound to the
    latest resource of each kind made before it."""
    made: dict[str, list] = {kind: [] for kind in OTHER_KINDS}
    for i in range(count):
        if i % 6 == 0:
            latest = {kind: rows[-1] if rows else None for kind, rows in made.items()}
            _worker(
                account,
                f"worker-{i}",
                kv=latest["kv"],
                d1=latest["d1"],
                queue=latest["queue"],
                hyperdrive=latest["hyperdrive"],
                cert=latest["certificate"],
            )
            continue
        kind = OTHER_KINDS[i % 6 - 1]
        if kind == "kv":
            row = KVNamespace.objects.create(account=account, title=f"ns-{i}")
        elif kind == "d1":
            row = D1Database.objects.create(account=account, name=f"db-{i}")
        elif kind == "queue":
            row = Queue.objects.create(account=account, name=f"queue-{i}")
        elif kind == "hyperdrive":
            row = _hyperdrive(account, f"pg-{i}")
        else:
            row = _certificate(account, f"cert-{i}")
        made[kind].append(row)


def _worker(account: CloudAccount, name: str, **bound) -> WorkerScript:
    kv, d1, queue = bound["kv"], bound["d1"], bound["queue"]
    hyperdrive, cert = bound["hyperdrive"], bound["cert"]
    bindings = [
        {"type": "plain_text", "name": "GREETING", "text": NEVER_SHOWN},
        {"type": "json", "name": "LIMITS", "json": {"max": NEVER_SHOWN}},
        {"type": "secret_text", "name": "SIGNING_KEY", "text": NEVER_SHOWN},
        {"type": "assets", "name": "ASSETS"},
        {
            "type": "durable_object_namespace",
            "name": "COUNTER",
            "class_name": "Counter",
        },
    ]
    if kv:
        bindings.append(
            {"type": "kv_namespace", "name": "CACHE", "namespace_id": kv.id}
        )
    if d1:
        bindings.append({"type": "d1", "name": "DB", "id": str(d1.uuid)})
    if queue:
        bindings.append({"type": "queue", "name": "JOBS", "queue_name": queue.name})
    if hyperdrive:
        bindings.append({"type": "hyperdrive", "name": "PG", "id": hyperdrive.id})
    if cert:
        bindings.append(
            {"type": "mtls_certificate", "name": "CERT", "certificate_id": cert.id}
        )
    script = WorkerScript.objects.create(
        account=account, name=name, workers_dev_enabled=True
    )
    assets = {
        "manifest": {
            "/index.html": {"hash": "a" * 32, "size": 1000},
            "/app.js": {"hash": "b" * 32, "size": 2000},
            "/logo.svg": {"hash": "c" * 32, "size": 48},
        },
        "config": {"html_handling": "auto-trailing-slash"},
    }
    version = WorkerVersion.objects.create(
        script=script,
        number=1,
        main_module="index.js",
        compatibility_date="2026-11-01",
        compatibility_flags=["nodejs_compat"],
        bindings=bindings,
        assets=assets,
        **version_summary(bindings=bindings, assets=assets),
    )
    script.current_version = version
    script.save(update_fields=["current_version"])
    WorkerDeployment.objects.create(
        script=script,
        created_at=timezone.now() - timedelta(minutes=3),
        versions=[{"version_id": str(version.id), "percentage": 100}],
    )
    WorkerSecret.objects.create(script=script, name="API_TOKEN", value=NEVER_SHOWN)
    return script


def _hyperdrive(account: CloudAccount, name: str) -> HyperdriveConfig:
    return HyperdriveConfig.objects.create(
        account=account,
        name=name,
        origin={
            "host": "db.example.com",
            "port": 5432,
            "database": "shop",
            "user": "app",
            "scheme": "postgres",
        },
        password=NEVER_SHOWN,
    )


def _certificate(account: CloudAccount, name: str) -> Certificate:
    return Certificate.objects.create(
        account=account,
        name=name,
        kind=Certificate.Kind.MTLS,
        certificate="-----BEGIN CERTIFICATE-----",
        private_key=NEVER_SHOWN,
        issuer="CN=Example CA",
        expires_on=timezone.now() + timedelta(days=365),
    )
