"""Rows as the JSON shapes the Cloudflare v4 API uses."""

from datetime import UTC, datetime

from accounts.models import CloudAccount, KVEntry, KVNamespace


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
