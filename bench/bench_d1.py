"""D1 `/query` through claimportal against plain sqlite3 on the same file.

For each workload, times N calls of POST /client/v4/accounts/<id>/d1/database/
<uuid>/query through Django's full stack in-process (middleware, bearer token,
account look-up, the envelope), then ``d1.run_queries`` alone (what the preview
runtime's binding calls: authorizer, limits, result shaping), then the same
statements with the standard library's sqlite3 on a copy of the database file:
once opening a connection per call (what any server has to do per request) and
once on one open connection (the floor). Prints medians per call and the ratios
against sqlite3 with a connection per call.

    .venv/bin/python bench/bench_d1.py [--calls 300]

Uses DATABASE_URL (PostgreSQL) and creates and drops ``bench_<name>``.
"""

import argparse
import json
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from harness import setup_django, throwaway_database

setup_django()

from django.conf import settings  # noqa: E402
from django.core.files.storage import default_storage  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.services import d1  # noqa: E402
from accounts.services.provisioning import create_temporary_account  # noqa: E402

SEED_ROWS = 2000
WORKLOADS: list[tuple[str, str, Callable[[int], list]]] = [
    (
        "insert one row",
        "INSERT INTO items (name, score) VALUES (?, ?)",
        lambda i: [f"n{i}", i],
    ),
    (
        "select by key",
        "SELECT id, name, score FROM items WHERE id = ?",
        lambda i: [i % SEED_ROWS + 1],
    ),
    (
        "select 100 rows",
        "SELECT id, name, score FROM items WHERE id > ? LIMIT 100",
        lambda i: [i % 1000],
    ),
]


def per_call(calls: int, run: Callable[[int], None]) -> float:
    """Median seconds of one call."""
    times = []
    for i in range(calls):
        started = time.perf_counter()
        run(i)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def through_api(client: Client, url: str, auth: dict, sql: str, params) -> Callable:
    def run(i: int) -> None:
        response = client.post(
            url,
            json.dumps({"sql": sql, "params": params(i)}),
            content_type="application/json",
            **auth,
        )
        assert response.status_code == 200, response.content

    return run


def through_service(database, sql: str, params) -> Callable:
    def run(i: int) -> None:
        d1.run_queries(database=database, queries=[d1.Query(sql, params(i))])

    return run


def fresh_connection(path: str, sql: str, params) -> Callable:
    def run(i: int) -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(sql, params(i)).fetchall()
            conn.execute("COMMIT")
        finally:
            conn.close()

    return run


def open_connection(conn: sqlite3.Connection, sql: str, params) -> Callable:
    def run(i: int) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(sql, params(i)).fetchall()
        conn.execute("COMMIT")

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    settings.ALLOWED_HOSTS = ["testserver"]  # Django's in-process client
    # Persistent database connections, as in production (test settings close them).
    connection.settings_dict["CONN_MAX_AGE"] = 60
    with (
        tempfile.TemporaryDirectory(
            prefix="bench-d1-", ignore_cleanup_errors=True
        ) as scratch,
        throwaway_database(),
    ):
        media = settings.MEDIA_ROOT = Path(scratch)
        made = create_temporary_account(now=timezone.now())
        database = d1.create_database(
            account=made.account, name="bench", now=timezone.now()
        )
        d1.run_queries(
            database=database,
            queries=[
                d1.Query(
                    "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, score REAL)"
                ),
                d1.Query(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
                    " WHERE i < ?) INSERT INTO items (name, score)"
                    " SELECT 'seed' || i, i FROM n",
                    [SEED_ROWS],
                ),
            ],
        )
        copy = str(media / "baseline.sqlite3")
        shutil.copyfile(default_storage.path(database.storage_name), copy)
        floor = sqlite3.connect(copy, isolation_level=None)

        client = Client()
        url = f"/client/v4/accounts/{made.account.id}/d1/database/{database.uuid}/query"
        auth = {"HTTP_AUTHORIZATION": f"Bearer {made.api_token}"}
        print(f"median per call over {args.calls} calls ({SEED_ROWS} seeded rows)")
        print(
            f"  {'workload':<16} {'HTTP API':>10} {'service':>10} "
            f"{'sqlite3/call':>13} {'sqlite3 open':>13} "
            f"{'API/call':>9} {'service/call':>13}"
        )
        for name, sql, params in WORKLOADS:
            ours = per_call(args.calls, through_api(client, url, auth, sql, params))
            service = per_call(args.calls, through_service(database, sql, params))
            fresh = per_call(args.calls, fresh_connection(copy, sql, params))
            opened = per_call(args.calls, open_connection(floor, sql, params))
            print(
                f"  {name:<16} {ours * 1000:8.3f}ms {service * 1000:8.3f}ms "
                f"{fresh * 1000:11.3f}ms {opened * 1000:11.3f}ms "
                f"{ours / fresh:9.1f} {service / fresh:13.1f}"
            )
        floor.close()


if __name__ == "__main__":
    main()
