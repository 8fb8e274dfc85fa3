"""Purging expired accounts, against raw SQL changing the same rows.

Makes N expired accounts with 10 resource rows and a token each, in a database
of its own, and times three ways of getting rid of them, best of --repeat:

  raw DELETE       hand-written DELETEs of the 10 resource rows per account,
                   all accounts at once, in one transaction;
  raw, same rows   those DELETEs plus the UPDATEs that leave the tombstone
                   (account marked purged, token revoked): every row the
                   purge changes, except its audit row;
  purge service    purge_expired_accounts: batches, SKIP LOCKED, the audit
                   trail, storage, the run record.

The ratio of the service to the raw SQL changing the same rows is the figure
to watch (goal: at most 2). Then it measures the purge's peak Python memory
with tracemalloc at a quarter of N and at N: batching should make them alike.

    .venv/bin/python bench/bench_purge.py [--accounts 10000] [--repeat 3]

Uses DATABASE_URL (PostgreSQL) and creates and drops ``bench_<name>``.
"""

import argparse
import tempfile
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

from harness import setup_django, throwaway_database

setup_django()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts import models as m  # noqa: E402
from accounts.services import purge  # noqa: E402

CHUNK = 1000

# The baseline: one DELETE per resource table for all the accounts' rows at
# once, leaves first, in one transaction; no locking, trail, tokens or storage.
RAW_DELETES = [
    "DELETE FROM accounts_workermodule m"
    " USING accounts_workerversion v, accounts_workerscript s"
    " WHERE m.version_id = v.id AND v.script_id = s.id AND s.account_id = ANY(%s)",
    "DELETE FROM accounts_workerdeployment x USING accounts_workerscript s"
    " WHERE x.script_id = s.id AND s.account_id = ANY(%s)",
    "DELETE FROM accounts_workerversion x USING accounts_workerscript s"
    " WHERE x.script_id = s.id AND s.account_id = ANY(%s)",
    "DELETE FROM accounts_kventry x USING accounts_kvnamespace n"
    " WHERE x.namespace_id = n.id AND n.account_id = ANY(%s)",
    "DELETE FROM accounts_workerscript WHERE account_id = ANY(%s)",
    "DELETE FROM accounts_kvnamespace WHERE account_id = ANY(%s)",
    "DELETE FROM accounts_d1database WHERE account_id = ANY(%s)",
    "DELETE FROM accounts_queue WHERE account_id = ANY(%s)",
    "DELETE FROM accounts_assetblob WHERE account_id = ANY(%s)",
]
RAW_TOMBSTONE = [
    "UPDATE accounts_cloudaccount SET state = 'expired', purged_at = now()"
    " WHERE id = ANY(%s)",
    "UPDATE accounts_apitoken SET revoked_at = now(), revoked_because = 'expired'"
    " WHERE account_id = ANY(%s) AND revoked_at IS NULL",
]
RESOURCE_MODELS = [
    m.WorkerScript,
    m.WorkerVersion,
    m.WorkerModule,
    m.WorkerDeployment,
    m.KVNamespace,
    m.KVEntry,
    m.D1Database,
    m.Queue,
    m.AssetBlob,
]


def make_expired(total: int, now) -> None:
    """``total`` expired accounts, each with a token and 10 resource rows: a
    Worker (script, version, module, deployment), a KV namespace with two
    entries, a D1 database, a queue and an asset blob."""
    past = now - timedelta(minutes=5)
    for start in range(0, total, CHUNK):
        accounts = m.CloudAccount.objects.bulk_create(
            m.CloudAccount(
                name=f"bench-{start + i}",
                subdomain=f"bench-{start + i}-{now.timestamp():.0f}",
                created_at=past - timedelta(hours=1),
                claim_expires_at=past,
            )
            for i in range(min(CHUNK, total - start))
        )
        m.ApiToken.objects.bulk_create(
            m.ApiToken(account=a, kind="temporary", prefix="cpt_", secret_hash=a.pk)
            for a in accounts
        )
        scripts = m.WorkerScript.objects.bulk_create(
            m.WorkerScript(account=a, name="worker") for a in accounts
        )
        versions = m.WorkerVersion.objects.bulk_create(
            m.WorkerVersion(script=s, number=1) for s in scripts
        )
        m.WorkerModule.objects.bulk_create(
            m.WorkerModule(
                version=v, name="index.js", content_type="js", content=b"x" * 200
            )
            for v in versions
        )
        m.WorkerDeployment.objects.bulk_create(
            m.WorkerDeployment(script=s, versions=[]) for s in scripts
        )
        namespaces = m.KVNamespace.objects.bulk_create(
            m.KVNamespace(account=a, title="kv") for a in accounts
        )
        m.KVEntry.objects.bulk_create(
            m.KVEntry(namespace=ns, key=key, value=b"v" * 100)
            for ns in namespaces
            for key in ("a", "b")
        )
        m.D1Database.objects.bulk_create(
            m.D1Database(account=a, name="db") for a in accounts
        )
        m.Queue.objects.bulk_create(m.Queue(account=a, name="q") for a in accounts)
        m.AssetBlob.objects.bulk_create(
            m.AssetBlob(account=a, hash="h", size=1, storage_name="") for a in accounts
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # what autovacuum would have done by now


def resource_rows() -> int:
    return sum(model.objects.count() for model in RESOURCE_MODELS)


def clean_slate() -> None:
    """Remove what a previous step left (tombstones, trail, runs)."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM accounts_auditevent")
        cursor.execute("DELETE FROM accounts_apitoken")
        cursor.execute("DELETE FROM accounts_purgerun")
        cursor.execute("DELETE FROM accounts_cloudaccount")
        cursor.execute("VACUUM ANALYZE")


def time_purge(total: int) -> float:
    clean_slate()
    now = timezone.now()
    make_expired(total, now)
    assert resource_rows() == total * 10
    started = time.perf_counter()
    result = purge.purge_expired_accounts(
        now=now, batch_size=settings.CLAIMPORTAL_PURGE_BATCH_SIZE
    )
    elapsed = time.perf_counter() - started
    assert result.accounts == total and resource_rows() == 0, result
    return elapsed


def time_raw(total: int, statements: list[str]) -> float:
    clean_slate()
    make_expired(total, timezone.now())
    assert resource_rows() == total * 10
    ids = list(m.CloudAccount.objects.values_list("pk", flat=True))
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement, [ids])
    elapsed = time.perf_counter() - started
    assert resource_rows() == 0
    return elapsed


def peak_memory(total: int, cleaners: list[str]) -> int:
    clean_slate()
    now = timezone.now()
    make_expired(total, now)
    configured = settings.CLAIMPORTAL_PURGE_CLEANERS
    settings.CLAIMPORTAL_PURGE_CLEANERS = cleaners
    tracemalloc.start()
    try:
        purge.purge_expired_accounts(
            now=now, batch_size=settings.CLAIMPORTAL_PURGE_BATCH_SIZE
        )
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        settings.CLAIMPORTAL_PURGE_CLEANERS = configured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    settings.MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="bench-purge-"))
    with throwaway_database():
        total = args.accounts
        runs = {
            "raw DELETE": lambda: time_raw(total, RAW_DELETES),
            "raw, same rows": lambda: time_raw(total, RAW_DELETES + RAW_TOMBSTONE),
            "purge service": lambda: time_purge(total),
        }
        best = dict.fromkeys(runs, float("inf"))
        for _ in range(args.repeat):  # interleaved, so none gets a warmer cache
            for name, run in runs.items():
                best[name] = min(best[name], run())
        print(
            f"{total} accounts x 10 resource rows, batch size "
            f"{settings.CLAIMPORTAL_PURGE_BATCH_SIZE}, best of {args.repeat}"
        )
        for name, seconds in best.items():
            print(f"  {name:<18}{seconds:8.3f} s")
        service = best["purge service"]
        print(
            f"  ratio to raw, same rows {service / best['raw, same rows']:5.2f}"
            "  (goal <= 2)"
        )
        print(f"  ratio to raw DELETE     {service / best['raw DELETE']:5.2f}")

        small, large = total // 4, total
        print("peak Python memory during the purge (tracemalloc)")
        for label, cleaners in (
            ("purge alone", []),
            ("with CLAIMPORTAL_PURGE_CLEANERS", settings.CLAIMPORTAL_PURGE_CLEANERS),
        ):
            low, high = peak_memory(small, cleaners), peak_memory(large, cleaners)
            print(
                f"  {label:<32} {small:>6}: {low / 1024:6.0f} KiB  "
                f"{large:>6}: {high / 1024:6.0f} KiB  ratio {high / low:4.2f}"
            )


if __name__ == "__main__":
    main()
