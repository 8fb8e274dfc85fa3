"""Rows as the JSON shapes the Cloudflare v4 API uses."""

import base64
from datetime import UTC, datetime

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
    WorkerVersion,
)
from accounts.services.queues import Lease
from accounts.services.workers import all_bindings


def iso(moment: datetime | None) -> str | None:
    """ISO-8601 UTC with milliseconds, as JavaScript's Date.parse wants."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def account_json(account: CloudAccount) -> dict:
    return {
        "id": account.id,
        "name": account.name,
        "type": "standard",
        "created_on": iso(account.created_at),
        "settings": {"enforce_twofactor": False},
    }


def kv_namespace_json(namespace: KVNamespace) -> dict:
    return {
        "id": namespace.id,
        "title": namespace.title,
        "supports_url_encoding": True,
    }


def kv_key_json(entry: KVEntry) -> dict:
    """A key as KV lists it: name, and expiration and metadata when it has them."""
    item: dict = {"name": entry.key}
    if entry.expiration is not None:
        item["expiration"] = entry.expiration
    if entry.metadata is not None:
        item["metadata"] = entry.metadata
    return item


# --- Workers -------------------------------------------------------------------


def worker_script_json(script: WorkerScript) -> dict:
    """A script as the services look-up and the upload answer describe it."""
    version = script.current_version
    return {
        "id": script.name,
        "tag": script.tag,
        "tags": script.script_settings.get("tags") or [],
        "etag": version.etag if version else None,
        "handlers": [],
        "migration_tag": script.migration_tag or None,
        # Never "dash": that makes wrangler fetch and diff a remote config.
        "last_deployed_from": "wrangler",
        "compatibility_date": version.compatibility_date if version else None,
        "compatibility_flags": version.compatibility_flags if version else [],
        "has_assets": bool(version and version.assets),
        "has_modules": bool(version and version.main_module),
        "logpush": bool(script.script_settings.get("logpush")),
        "usage_model": "standard",
        "created_on": iso(script.created_at),
        "modified_on": iso(script.updated_at),
    }


def worker_service_json(script: WorkerScript) -> dict:
    return {
        "id": script.name,
        "default_environment": {
            "environment": "production",
            "created_on": iso(script.created_at),
            "modified_on": iso(script.updated_at),
            "script": worker_script_json(script),
        },
        "created_on": iso(script.created_at),
        "modified_on": iso(script.updated_at),
    }


def worker_version_json(version: WorkerVersion, bindings: list | None = None) -> dict:
    return {
        "id": str(version.pk),
        "number": version.number,
        "metadata": {
            "created_on": iso(version.created_at),
            "modified_on": iso(version.created_at),
            "source": version.source,
            "author_email": "",
            "has_preview": False,
        },
        "annotations": version.annotations,
        "resources": {
            "script": {
                "etag": version.etag,
                "handlers": [],
                "last_deployed_from": "wrangler",
            },
            "script_runtime": {
                "compatibility_date": version.compatibility_date,
                "compatibility_flags": version.compatibility_flags,
                "usage_model": "standard",
            },
            "bindings": all_bindings(version=version) if bindings is None else bindings,
        },
    }


def worker_deployment_json(deployment: WorkerDeployment) -> dict:
    return {
        "id": str(deployment.pk),
        "created_on": iso(deployment.created_at),
        "source": deployment.source,
        "strategy": deployment.strategy,
        "author_email": "",
        "annotations": deployment.annotations,
        "versions": deployment.versions,
    }


def durable_object_namespace_json(namespace: DurableObjectNamespace) -> dict:
    return {
        "id": namespace.id,
        "name": f"{namespace.script.name}_{namespace.class_name}",
        "script": namespace.script.name,
        "class": namespace.class_name,
        "use_sqlite": namespace.use_sqlite,
    }


def d1_database_json(database: D1Database) -> dict:
    return {
        "uuid": str(database.uuid),
        "name": database.name,
        "created_at": iso(database.created_at),
        "version": "production",
        "num_tables": database.table_count,
        "file_size": database.file_size,
    }


def queue_consumer_json(consumer: QueueConsumer, queue: Queue) -> dict:
    """A consumer as wrangler matches it on redeploy: ``type`` and ``script``."""
    item = {
        "consumer_id": consumer.id,
        "type": consumer.type,
        "queue_name": queue.name,
        "created_on": iso(consumer.created_at),
        "settings": consumer.settings,
    }
    if consumer.type == "worker":
        item["script"] = item["script_name"] = consumer.script_name
    if consumer.dead_letter_queue:
        item["dead_letter_queue"] = consumer.dead_letter_queue
    return item


def queue_json(queue: Queue, producers: dict[str, list[str]]) -> dict:
    consumers = [queue_consumer_json(c, queue) for c in queue.consumers.all()]
    scripts = producers.get(queue.name, [])
    return {
        "queue_id": queue.id,
        "queue_name": queue.name,
        "created_on": iso(queue.created_at),
        "modified_on": iso(queue.modified_at),
        "settings": queue.settings,
        "producers": [{"type": "worker", "script": name} for name in scripts],
        "producers_total_count": len(scripts),
        "consumers": consumers,
        "consumers_total_count": len(consumers),
    }


def queue_message_json(lease: Lease) -> dict:
    """A pulled message: text for json and text messages, base64 otherwise."""
    message = lease.message
    body = bytes(message.body)
    return {
        "id": message.pk.hex,
        "body": body.decode("utf-8", "replace")
        if message.content_type in {"json", "text"}
        else base64.b64encode(body).decode(),
        "attempts": message.attempts,
        "timestamp_ms": int(message.created_at.timestamp() * 1000),
        "lease_id": lease.lease_id,
        "metadata": {"CF-Content-Type": message.content_type},
    }


def hyperdrive_json(config: HyperdriveConfig) -> dict:
    """A Hyperdrive config without its password, as Cloudflare shows one."""
    item = {
        "id": config.id,
        "name": config.name,
        "origin": dict(config.origin),
        "caching": config.caching or {"disabled": False},
        "created_on": iso(config.created_at),
        "modified_on": iso(config.modified_at),
    }
    if config.mtls:
        item["mtls"] = config.mtls
    if config.origin_connection_limit is not None:
        item["origin_connection_limit"] = config.origin_connection_limit
    return item


def certificate_json(certificate: Certificate) -> dict:
    """A certificate as Cloudflare lists one; the private key is never included."""
    return {
        "id": certificate.id,
        "name": certificate.name,
        "ca": certificate.kind == Certificate.Kind.CA,
        "certificates": certificate.certificate,
        "issuer": certificate.issuer,
        "serial_number": certificate.serial_number,
        "signature": certificate.signature,
        "expires_on": iso(certificate.expires_on),
        "uploaded_on": iso(certificate.uploaded_on),
    }
