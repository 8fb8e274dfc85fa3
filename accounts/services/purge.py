"""Expiry and purge: an unclaimed account past its deadline loses every row and
every byte it holds, and only a tombstone stays.

The tombstone is the CloudAccount row (state expired, ``purged_at`` set) with its
tokens, claim links, audit trail and abuse reports, so an old token or claim link
still answers "expired" rather than "unknown". Tombstones themselves go after
``CLAIMPORTAL_TOMBSTONE_RETENTION``.

Rows go in one transaction per batch. Bytes in storage go only after that commit,
so a crash can leave files behind but never a half-deleted account; the next run
finds files under a purged (or vanished) account's storage prefix and removes them.
"""

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import NamedTuple

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection, models, transaction
from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils.module_loading import import_string

from accounts.exceptions import Conflict
from accounts.models import (
    ACCOUNT_STORAGE_ROOT,
    AbuseReport,
    ApiToken,
    AuditEvent,
    ClaimLink,
    CloudAccount,
    PreviewIdentity,
    PurgeRun,
    User,
    account_storage_prefix,
    due_condition,
)

logger = logging.getLogger(__name__)

# What a tombstone keeps. Everything else reachable from the account goes. The
# preview identity stays so its UID is given to another account only once the
# range is used up.
TOMBSTONE_KEEPS = (ApiToken, ClaimLink, AuditEvent, AbuseReport, PreviewIdentity)
# How many storage folders the orphan sweep checks against the database at once.
SWEEP_CHUNK = 500

State = CloudAccount.State


@dataclass
class PurgeResult:
    accounts: int = 0
    resources: int = 0  # rows deleted, children (versions, KV entries...) included
    files: int = 0
    bytes_deleted: int = 0
    max_lag_seconds: float = 0.0
    tombstones: int = 0

    def as_dict(self) -> dict[str, int | float]:
        return dict(self.__dict__)


# --- What an account owns ---------------------------------------------------------


@dataclass(frozen=True)
class _Owned:
    """A table holding rows of an account, and the chain of foreign keys from
    such a row up to the account (nearest first)."""

    model: type[models.Model]
    path: tuple[models.ForeignKey, ...]

    @property
    def has_files(self) -> bool:
        return any(f.name == "storage_name" for f in self.model._meta.fields)

    def rows_of(self, ids: RawSQL) -> QuerySet:
        lookup = "__".join(fk.name for fk in self.path) + "__in"
        return self.model._default_manager.filter(**{lookup: ids})

    def delete_sql(self, ids: RawSQL) -> str:
        """One DELETE for every row of the accounts ``ids``, loading none."""
        # Names come from model metadata, quoted; the ids are parameters.
        qn = connection.ops.quote_name
        *links, last = self.path
        condition = f"{qn(last.column)} IN ({ids.sql})"
        for fk in reversed(links):
            parent = qn(fk.related_model._meta.db_table)
            target = qn(fk.target_field.column)
            inner = f"SELECT {target} FROM {parent} WHERE {condition}"  # noqa: S608
            condition = f"{qn(fk.column)} IN ({inner})"
        return f"DELETE FROM {qn(self.model._meta.db_table)} WHERE {condition}"  # noqa: S608


@cache
def owned_tables() -> tuple[_Owned, ...]:
    """Every table an account owns rows in, leaves first.

    Found by following CASCADE foreign keys down from CloudAccount, so a resource
    model added later is purged without being listed here. Foreign keys that
    point back up inside the same account (a script's current version) are
    left to PostgreSQL's deferred constraint checks: both rows go in the same
    transaction.
    """

    def walk(model: type[models.Model], path: tuple) -> Iterator[_Owned]:
        for rel in model._meta.related_objects:
            child = rel.related_model
            if rel.on_delete is not models.CASCADE or child in TOMBSTONE_KEEPS:
                continue
            if any(fk.model is child for fk in path):
                continue  # a cycle: the outer walk already deletes these rows
            child_path = (rel.field, *path)
            yield from walk(child, child_path)
            yield _Owned(child, child_path)

    # A table reached twice (Durable Object classes hang off the account and
    # off their script) needs only its first, leaves-first, DELETE.
    unique: dict[type[models.Model], _Owned] = {}
    for owned in walk(CloudAccount, ()):
        unique.setdefault(owned.model, owned)
    return tuple(unique.values())


# --- Which accounts are due -------------------------------------------------------


def due(now: datetime) -> Q:
    """The accounts the purge deletes (the rule lives in the model)."""
    return due_condition(now)


def due_for_purge(now: datetime) -> QuerySet[CloudAccount]:
    return CloudAccount.objects.due(now)


def tombstones_due(now: datetime) -> QuerySet[CloudAccount]:
    cutoff = now - settings.CLAIMPORTAL_TOMBSTONE_RETENTION
    return CloudAccount.objects.filter(purged_at__lt=cutoff)


def _id_set(ids: list[str]) -> RawSQL:
    """Account ids for ``__in`` and raw SQL. On PostgreSQL one string parameter
    (ids are hex, so commas separate them exactly): binding a thousand
    placeholders, or an array element by element, costs more than the
    statement takes to run."""
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(string_to_array(%s, ','))", [",".join(ids)])
    return RawSQL(", ".join(["%s"] * len(ids)), ids)  # noqa: S611 (placeholders)


class _Due(NamedTuple):
    id: str
    state: str
    claim_expires_at: datetime

    def lag_seconds(self, now: datetime) -> float:
        return max((now - self.claim_expires_at).total_seconds(), 0.0)


_DUE_FIELDS = ("pk", "state", "claim_expires_at")


def _lock_due(*, now: datetime, limit: int) -> list[_Due]:
    """Lock up to ``limit`` due accounts that nobody else holds.

    PostgreSQL re-evaluates the WHERE clause on the locked version of each row,
    so a claim that committed first makes its account not due here; an account
    whose claim is still in flight is locked by it and skipped, and the next
    run sees it claimed. Two purges at once take disjoint rows.
    """
    rows = (
        due_for_purge(now)
        .select_for_update(skip_locked=True)
        .order_by("claim_expires_at")
        .values_list(*_DUE_FIELDS)[:limit]
    )
    return [_Due(*row) for row in rows]


# --- Purging ----------------------------------------------------------------------


def _purge_rows(
    due: list[_Due], *, now: datetime, actor: User | None
) -> tuple[int, list[str]]:
    """With ``due`` locked: mark them purged, refuse their tokens, write the
    trail and delete every owned row. Returns the number of rows deleted and
    the storage names to delete once this transaction has committed.

    A fixed number of queries whatever the number of accounts or resources.
    """
    ids = _id_set([account.id for account in due])
    names = [
        name
        for owned in owned_tables()
        if owned.has_files
        for name in owned.rows_of(ids)
        .exclude(storage_name="")
        .values_list("storage_name", flat=True)
    ]
    CloudAccount.objects.filter(pk__in=ids).update(
        state=State.EXPIRED, state_before_suspension="", purged_at=now
    )
    ApiToken.objects.filter(account_id__in=ids, revoked_at__isnull=True).update(
        revoked_at=now, revoked_because=ApiToken.RevokedBecause.EXPIRED
    )
    label = actor.get_username() if actor else "system"
    # One row per account: "expired and purged", from whatever state it was in.
    AuditEvent.objects.bulk_create(
        AuditEvent(
            account_id=account.id,
            account_ref=account.id,
            kind=AuditEvent.Kind.PURGED,
            actor=actor,
            actor_label=label,
            created_at=now,
            details={
                "previous_state": account.state,
                "lag_seconds": round(account.lag_seconds(now), 3),
            },
        )
        for account in due
    )
    deleted = 0
    with connection.cursor() as cursor:
        for owned in owned_tables():
            cursor.execute(owned.delete_sql(ids), ids.params)
            deleted += cursor.rowcount
    return deleted, names


def _delete_file(name: str) -> int | None:
    """Delete one stored file; its size, or None when it was already gone."""
    try:
        size = default_storage.size(name)
    except FileNotFoundError:
        return None
    default_storage.delete(name)
    return size


def _delete_tree(prefix: str) -> tuple[int, int]:
    """Delete every file under ``prefix``; returns (files, bytes)."""
    try:
        folders, names = default_storage.listdir(prefix)
    except FileNotFoundError:
        return 0, 0
    files = total = 0
    for folder in folders:
        more_files, more_bytes = _delete_tree(f"{prefix}/{folder}")
        files, total = files + more_files, total + more_bytes
    for name in names:
        size = _delete_file(f"{prefix}/{name}")
        if size is not None:
            files, total = files + 1, total + size
    # Local disk keeps empty folders; other storages have none to remove.
    with contextlib.suppress(NotImplementedError, OSError):
        os.rmdir(default_storage.path(prefix))
    return files, total


def _delete_stored(*, names: list[str], account_ids: list[str]) -> tuple[int, int]:
    """After commit: the named files (wherever they are), then everything left
    under each account's prefix (failed uploads included)."""
    files = total = 0
    for name in names:
        size = _delete_file(name)
        if size is not None:
            files, total = files + 1, total + size
    for account_id in account_ids:
        more_files, more_bytes = _delete_tree(account_storage_prefix(account_id))
        files, total = files + more_files, total + more_bytes
    return files, total


def _run_cleaners(account_ids: list[str]) -> None:
    """Hand purged ids to the cleaners named in CLAIMPORTAL_PURGE_CLEANERS, for
    data kept outside our storage (a preview runtime's Durable Object files).
    Each is called as ``cleaner(account_ids=[...])`` after the rows and files
    are gone, must be idempotent, and failing does not undo the purge."""
    for path in settings.CLAIMPORTAL_PURGE_CLEANERS:
        try:
            import_string(path)(account_ids=account_ids)
        except Exception:  # one broken cleaner must not stop the purge
            logger.exception("purge cleaner %s failed", path)


def _finish(
    due: list[_Due], *, now: datetime, names: list[str], result: PurgeResult
) -> None:
    ids = [account.id for account in due]
    files, total = _delete_stored(names=names, account_ids=ids)
    _run_cleaners(ids)
    result.accounts += len(due)
    result.files += files
    result.bytes_deleted += total
    result.max_lag_seconds = max(
        [result.max_lag_seconds, *(account.lag_seconds(now) for account in due)]
    )


def purge_expired_accounts(
    *, now: datetime, batch_size: int, time_budget: float | None = None
) -> PurgeResult:
    """Purge every account due at ``now``, ``batch_size`` accounts per
    transaction, then delete tombstones past retention and sweep orphaned files.

    Idempotent and safe to run concurrently: each batch locks its accounts with
    SKIP LOCKED. With ``time_budget`` (seconds) it stops starting new batches
    after that long, and the next run carries on. Records a PurgeRun and logs
    one line with the counts. Must not be called inside a transaction: files
    are deleted after each batch commits.
    """
    started = time.monotonic()
    result = PurgeResult()
    while True:
        with transaction.atomic(durable=True):
            due = _lock_due(now=now, limit=batch_size)
            if due:
                deleted, names = _purge_rows(due, now=now, actor=None)
                result.resources += deleted
        if not due:
            break
        _finish(due, now=now, names=names, result=result)
        out_of_time = time_budget is not None and (
            time.monotonic() - started >= time_budget
        )
        if len(due) < batch_size or out_of_time:
            break
    result.tombstones = _delete_tombstones(now=now, batch_size=batch_size)
    files, total = sweep_orphaned_files()
    result.files += files
    result.bytes_deleted += total
    _record_run(result, now=now, duration=time.monotonic() - started)
    return result


def purge_account_now(
    *, account: CloudAccount, now: datetime, actor: User | None
) -> PurgeResult:
    """Purge one unclaimed account at once, whatever its deadline (a
    moderator's "purge now"). Purging a purged account does nothing.

    Raises Conflict for an account a person owns (claimed, or suspended after
    being claimed): suspend it instead.
    """
    result = PurgeResult()
    with transaction.atomic(durable=True):
        locked = (
            CloudAccount.objects.select_for_update()
            .filter(pk=account.pk)
            .values_list(*_DUE_FIELDS, "state_before_suspension", "purged_at")
            .first()
        )
        if locked is None or locked[-1] is not None:
            return result
        *fields, before_suspension, _purged_at = locked
        due = [_Due(*fields)]
        if State.CLAIMED in (due[0].state, before_suspension):
            raise Conflict("This account belongs to someone; suspend it instead.")
        result.resources, names = _purge_rows(due, now=now, actor=actor)
    _finish(due, now=now, names=names, result=result)
    return result


def _delete_tombstones(*, now: datetime, batch_size: int) -> int:
    """Delete tombstones (and old purge-run records) past retention."""
    cutoff = now - settings.CLAIMPORTAL_TOMBSTONE_RETENTION
    PurgeRun.objects.filter(started_at__lt=cutoff).delete()
    deleted = 0
    while True:
        with transaction.atomic(durable=True):
            ids = list(
                tombstones_due(now)
                .select_for_update(skip_locked=True)
                .values_list("pk", flat=True)[:batch_size]
            )
            # Tokens, claim links and reports go with them; the audit trail
            # stays, detached, under account_ref.
            CloudAccount.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
        if len(ids) < batch_size:
            return deleted


def sweep_orphaned_files() -> tuple[int, int]:
    """Delete storage folders of accounts that are purged or gone: what a run
    that crashed after its commit, or an upload that raced the purge, left.
    Returns (files, bytes)."""
    try:
        folders, _files = default_storage.listdir(ACCOUNT_STORAGE_ROOT)
    except FileNotFoundError:
        return 0, 0
    files = total = 0
    for start in range(0, len(folders), SWEEP_CHUNK):
        chunk = folders[start : start + SWEEP_CHUNK]
        alive = set(
            CloudAccount.objects.filter(
                pk__in=chunk, purged_at__isnull=True
            ).values_list("pk", flat=True)
        )
        for account_id in chunk:
            if account_id not in alive:
                more_files, more_bytes = _delete_tree(
                    account_storage_prefix(account_id)
                )
                files, total = files + more_files, total + more_bytes
    return files, total


def _record_run(result: PurgeResult, *, now: datetime, duration: float) -> None:
    backlog = due_for_purge(now).count()
    PurgeRun.objects.create(
        started_at=now,
        finished_at=now + timedelta(seconds=duration),
        accounts=result.accounts,
        resources=result.resources,
        bytes_deleted=result.bytes_deleted,
        max_lag_seconds=result.max_lag_seconds,
    )
    logger.info(
        "purge run accounts=%d resources=%d files=%d bytes=%d max_lag_s=%.1f "
        "tombstones=%d backlog=%d duration_s=%.3f",
        result.accounts,
        result.resources,
        result.files,
        result.bytes_deleted,
        result.max_lag_seconds,
        result.tombstones,
        backlog,
        duration,
    )
