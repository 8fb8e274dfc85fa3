"""Workers KV: namespaces of an account, and the keys and values inside them.

The key functions take a namespace row and are shared by the client/v4 API and
the preview runtime's KV binding, so both see the same data and the same rules.
"""

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Collate
from django.utils import timezone

from accounts.exceptions import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
)
from accounts.models import CloudAccount, KVEntry, KVNamespace
from accounts.services import event_subscriptions
from accounts.services.locking import lock_live_account
from accounts.services.validation import (
    clean_text,
    is_hex_id,
)

TITLE_MAX_LENGTH = 512
NAMESPACE_ORDERINGS = {"id": "id", "title": "title"}


class NamespaceNotFound(NotFound):
    code = 10013
    message = "namespace not found"


class TooManyNamespaces(DomainError):
    code = 10018
    message = "This account has as many KV namespaces as it may have."


def list_namespaces(
    *, account: CloudAccount, order: str = "title", descending: bool = False
) -> QuerySet[KVNamespace]:
    field = NAMESPACE_ORDERINGS.get(order, "title")
    return account.kv_namespaces.order_by(f"-{field}" if descending else field, "id")


def get_namespace(*, account: CloudAccount, namespace_id: str) -> KVNamespace:
    """The account's namespace with that id; NamespaceNotFound otherwise."""
    namespace = _namespaces(account, namespace_id).first()
    if namespace is None:
        raise NamespaceNotFound()
    return namespace


def _namespaces(account: CloudAccount, namespace_id: str) -> QuerySet[KVNamespace]:
    if not is_hex_id(namespace_id):
        return account.kv_namespaces.none()
    return account.kv_namespaces.filter(pk=namespace_id)


def create_namespace(
    *, account: CloudAccount, title: str, now: datetime
) -> KVNamespace:
    """Create a namespace, or return the account's namespace of that title.

    Idempotent by title: wrangler re-creates auto-provisioned namespaces when a
    redeploy cannot inherit them (spec 3), and a duplicate error would abort it.
    Raises InvalidInput (bad title) and TooManyNamespaces.
    """
    with transaction.atomic():
        lock_live_account(account_id=account.pk, now=now)
        existing = account.kv_namespaces.filter(title=title).first()
        if existing is not None:
            return existing
        if account.kv_namespaces.count() >= settings.CLAIMPORTAL_KV_MAX_NAMESPACES:
            raise TooManyNamespaces(
                f"An account may have {settings.CLAIMPORTAL_KV_MAX_NAMESPACES} KV "
                "namespaces; delete one first."
            )
        namespace = KVNamespace.objects.create(
            account=account, title=title, created_at=now
        )
        _publish(namespace, "namespace.created", now)
        return namespace


@transaction.atomic
def rename_namespace(
    *, account: CloudAccount, namespace_id: str, title: str
) -> KVNamespace:
    """Give a namespace a new title. Raises NamespaceNotFound, Conflict."""
    lock_live_account(account_id=account.pk)
    namespace = _namespaces(account, namespace_id).select_for_update().first()
    if namespace is None:
        raise NamespaceNotFound()
    namespace.title = title
    try:
        with transaction.atomic():
            namespace.save(update_fields=["title"])
    except IntegrityError as exc:
        raise Conflict(
            "a namespace with this account ID and title already exists"
        ) from exc
    return namespace


@transaction.atomic
def delete_namespace(*, account: CloudAccount, namespace_id: str) -> None:
    """Delete a namespace and every key in it. Raises NamespaceNotFound.

    The row lock makes writers that are still inserting keys finish first, so the
    cascade sees their rows; writers that come later find no namespace.
    """
    lock_live_account(account_id=account.pk)
    namespace = _namespaces(account, namespace_id).select_for_update().first()
    if namespace is None:
        raise NamespaceNotFound()
    _publish(namespace, "namespace.deleted", timezone.now())
    namespace.delete()


def _publish(namespace: KVNamespace, event: str, now: datetime) -> None:
    event_subscriptions.publish(
        account_id=namespace.account_id,
        source_type="kv",
        event=event,
        payload={"id": namespace.id, "name": namespace.title},
        now=now,
    )


# --- Keys and values -------------------------------------------------------------

KEY_MAX_BYTES = 512
METADATA_MAX_BYTES = 1024
MIN_TTL_SECONDS = 60
BULK_MAX_KEYS = 10_000
LIST_MAX_KEYS = 1000


class KeyNotFound(NotFound):
    code = 10009
    message = "key not found"


@dataclass(frozen=True)
class KVWrite:
    """One checked write: what ``put_value`` and ``bulk_put`` store."""

    key: str
    value: bytes
    metadata: Any = None
    expiration: int | None = None


@dataclass(frozen=True)
class KeyPage:
    entries: list[KVEntry]
    cursor: str  # empty when there is nothing after this page


def _epoch(now: datetime) -> int:
    return int(now.timestamp())


def check_key(key: Any) -> str:
    """A key KV accepts: 1 to 512 UTF-8 bytes, not "." or ".."."""
    key = clean_text(key, field="key", max_length=KEY_MAX_BYTES)
    if key in {".", ".."}:
        raise InvalidInput("Keys '.' and '..' are not allowed.")
    if len(key.encode()) > KEY_MAX_BYTES:
        raise InvalidInput(f"A key may be at most {KEY_MAX_BYTES} bytes long.")
    return key


def new_write(
    *,
    key: Any,
    value: bytes,
    now: datetime,
    metadata: Any = None,
    expiration: int | None = None,
    expiration_ttl: int | None = None,
) -> KVWrite:
    """Check one write as Cloudflare does; ``expiration_ttl`` wins over
    ``expiration``, and either must lie at least 60 s ahead.

    Raises InvalidInput, PayloadTooLarge.
    """
    key = check_key(key)
    limit = settings.CLAIMPORTAL_KV_MAX_VALUE_BYTES
    if len(value) > limit:
        raise PayloadTooLarge(
            f"The value of '{key}' is {len(value)} bytes; KV values may be at most "
            f"{limit} bytes."
        )
    at = None
    if expiration_ttl is not None:
        ttl = expiration_ttl
        if ttl < MIN_TTL_SECONDS:
            raise InvalidInput(
                f"Invalid expiration_ttl of {ttl}: it must be at least "
                f"{MIN_TTL_SECONDS} seconds."
            )
        at = _epoch(now) + ttl
    elif expiration is not None:
        at = expiration
        if at < _epoch(now) + MIN_TTL_SECONDS:
            raise InvalidInput(
                f"Invalid expiration of {at}: it must be at least "
                f"{MIN_TTL_SECONDS} seconds in the future (Unix seconds)."
            )
    return KVWrite(key=key, value=value, metadata=metadata, expiration=at)


def live_entries(*, namespace: KVNamespace, now: datetime) -> QuerySet[KVEntry]:
    """The namespace's entries that have not expired: expired keys are invisible."""
    return namespace.entries.filter(
        Q(expiration__isnull=True) | Q(expiration__gt=_epoch(now))
    )


def bulk_put(*, namespace: KVNamespace, writes: list[KVWrite], now: datetime) -> int:
    """Store every write or none; the last write of a repeated key wins.

    Raises InvalidInput (too many), NamespaceNotFound (deleted meanwhile).
    """
    if len(writes) > BULK_MAX_KEYS:
        raise InvalidInput(f"At most {BULK_MAX_KEYS} keys may be written at once.")
    latest = {write.key: write for write in writes}
    rows = [
        KVEntry(
            namespace=namespace,
            key=write.key,
            value=write.value,
            metadata=write.metadata,
            expiration=write.expiration,
            updated_at=now,
        )
        for write in latest.values()
    ]
    try:
        with transaction.atomic():
            lock_live_account(account_id=namespace.account_id, now=now)
            # One INSERT ... ON CONFLICT: concurrent writers of a key never collide.
            KVEntry.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["namespace", "key"],
                update_fields=["value", "metadata", "expiration", "updated_at"],
            )
    except IntegrityError as exc:  # the namespace went away under us
        raise NamespaceNotFound() from exc
    return len(rows)


def put_value(
    *,
    namespace: KVNamespace,
    key: Any,
    value: bytes,
    now: datetime,
    metadata: Any = None,
    expiration: int | None = None,
    expiration_ttl: int | None = None,
) -> None:
    """Write one key (see ``new_write`` for the rules)."""
    write = new_write(
        key=key,
        value=value,
        now=now,
        metadata=metadata,
        expiration=expiration,
        expiration_ttl=expiration_ttl,
    )
    bulk_put(namespace=namespace, writes=[write], now=now)


def get_value(*, namespace: KVNamespace, key: str, now: datetime) -> KVEntry:
    """The live entry under ``key``; KeyNotFound otherwise."""
    key = check_key(key)
    entry = live_entries(namespace=namespace, now=now).filter(key=key).first()
    if entry is None:
        raise KeyNotFound()
    return entry


def bulk_get(
    *, namespace: KVNamespace, keys: list[str], now: datetime
) -> dict[str, KVEntry | None]:
    """Each asked key mapped to its live entry or None, in the order asked."""
    if len(keys) > 100:
        raise InvalidInput("At most 100 keys may be read at once.")
    keys = [check_key(key) for key in keys]
    found = {
        e.key: e
        for e in live_entries(namespace=namespace, now=now).filter(key__in=keys)
    }
    return {key: found.get(key) for key in keys}


def delete_key(*, namespace: KVNamespace, key: str) -> None:
    """Forget ``key``; deleting a missing key is not an error."""
    key = check_key(key)
    with transaction.atomic():
        lock_live_account(account_id=namespace.account_id)
        namespace.entries.filter(key=key).delete()


def bulk_delete(*, namespace: KVNamespace, keys: list[str]) -> int:
    if len(keys) > BULK_MAX_KEYS:
        raise InvalidInput(f"At most {BULK_MAX_KEYS} keys may be deleted at once.")
    keys = [check_key(key) for key in keys]
    with transaction.atomic():
        lock_live_account(account_id=namespace.account_id)
        deleted, _ = namespace.entries.filter(key__in=keys).delete()
    return deleted


def list_keys(
    *,
    namespace: KVNamespace,
    now: datetime,
    prefix: str = "",
    cursor: str = "",
    limit: int = LIST_MAX_KEYS,
) -> KeyPage:
    """Live keys in UTF-8 byte order, ``limit`` at a time; pass the returned
    cursor back for the next page. Values are not loaded.

    Raises InvalidInput for a cursor this service did not hand out.
    """
    limit = max(1, min(limit, LIST_MAX_KEYS))
    prefix = clean_text(
        prefix, field="prefix", max_length=KEY_MAX_BYTES, required=False
    )
    rows = live_entries(namespace=namespace, now=now).defer("value")
    rows = rows.alias(byte_key=_byte_order("key")).order_by("byte_key")
    if prefix:
        rows = rows.filter(key__startswith=prefix)
    if cursor:
        rows = rows.filter(byte_key__gt=_decode_cursor(cursor))
    entries: list[KVEntry] = list(rows[: limit + 1])
    more = len(entries) > limit
    entries = entries[:limit]
    return KeyPage(
        entries=entries, cursor=_encode_cursor(entries[-1].key) if more else ""
    )


def _byte_order(field: str) -> Collate | F:
    # KV lists keys in byte order; PostgreSQL's default collation may not be that.
    if connection.vendor == "postgresql":
        return Collate(field, "C")
    return F(field)  # SQLite compares text as bytes already


def _encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode()


def _decode_cursor(cursor: str) -> str:
    try:
        return check_key(
            base64.urlsafe_b64decode(cursor.encode("ascii")).decode("utf-8")
        )
    except (ValueError, InvalidInput) as exc:
        raise InvalidInput("The cursor is not one this service handed out.") from exc
