"""D1 over client/v4: databases, SQL run for real on SQLite, import and export."""

import hashlib
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.files.storage import default_storage

from accounts.models import D1Database
from accounts.services import d1
from tests.cloudapi import AccountClient, concurrently, error_code, ok

pytestmark = pytest.mark.django_db

DB = "d1/database"


@pytest.fixture
def api(client, provision) -> AccountClient:
    return AccountClient(client, provision())


@pytest.fixture
def db(api) -> dict:
    return ok(api.post(DB, {"name": "agentdb"}))


def query(api, db, sql, params=None, *, path="query"):
    body = {"sql": sql} if params is None else {"sql": sql, "params": params}
    return api.post(f"{DB}/{db['uuid']}/{path}", body)


def rows(api, db, sql, params=None):
    return ok(query(api, db, sql, params))[-1]["results"]


# --- Databases ---------------------------------------------------------------------


def test_create_get_by_uuid_or_name_list_and_delete(api, db, settings):
    assert db["name"] == "agentdb"
    assert ok(api.get(f"{DB}/{db['uuid']}"))["name"] == "agentdb"
    assert ok(api.get(f"{DB}/agentdb?fields=uuid,name"))["uuid"] == db["uuid"]
    stored = D1Database.objects.get(uuid=db["uuid"])
    assert default_storage.exists(stored.storage_name)

    ok(api.post(DB, {"name": "other"}))
    listed = api.get(f"{DB}?per_page=10&page=1").json()
    assert [d["name"] for d in listed["result"]] == ["agentdb", "other"]
    assert set(listed["result"][0]) >= {
        "uuid",
        "name",
        "created_at",
        "version",
        "num_tables",
        "file_size",
    }
    assert [d["name"] for d in ok(api.get(f"{DB}?name=other"))] == ["other"]
    assert ok(api.get(f"{DB}?per_page=10&page=2")) == []

    ok(api.delete(f"{DB}/{db['uuid']}"))
    missing = api.get(f"{DB}/agentdb")
    assert missing.status_code == HTTPStatus.NOT_FOUND
    assert error_code(missing) == 7404


def test_deleting_removes_the_file_once_committed(
    api, db, settings, django_capture_on_commit_callbacks
):
    stored = D1Database.objects.get(uuid=db["uuid"])
    etag = hashlib.md5(b"SELECT 1;", usedforsecurity=False).hexdigest()
    d1.receive_import(database=stored, etag=etag, data=b"SELECT 1;")  # not ingested
    with django_capture_on_commit_callbacks(execute=True):
        ok(api.delete(f"{DB}/agentdb"))
    assert not default_storage.exists(stored.storage_name)
    assert [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()] == []


def test_a_missing_database_is_7404_as_provisioning_expects(api):
    response = api.get(f"{DB}/full-db")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == 7404


def test_a_duplicate_name_is_7502(api, db):
    response = api.post(DB, {"name": "agentdb"})
    assert error_code(response) == 7502
    assert D1Database.objects.count() == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "has space"},
        {"name": "x" * 65},
        {"name": "-lead"},
        {"name": "ok", "jurisdiction": "eu"},
    ],
)
def test_bad_create_bodies_are_400(api, body):
    response = api.post(DB, body)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not D1Database.objects.exists()


def test_the_database_count_is_limited_with_7406(api, settings):
    settings.CLAIMPORTAL_D1_MAX_DATABASES = 1
    ok(api.post(DB, {"name": "one"}))
    assert error_code(api.post(DB, {"name": "two"})) == 7406


def test_another_accounts_database_is_invisible(client, provision):
    mine = AccountClient(client, provision())
    theirs = AccountClient(client, provision())
    their_db = ok(theirs.post(DB, {"name": "private"}))
    ok(query(theirs, their_db, "CREATE TABLE t (x); INSERT INTO t VALUES ('secret')"))
    assert ok(mine.get(DB)) == []
    for response in [
        mine.get(f"{DB}/{their_db['uuid']}"),
        mine.get(f"{DB}/private"),
        query(mine, their_db, "SELECT * FROM t"),
        mine.delete(f"{DB}/{their_db['uuid']}"),
    ]:
        assert response.status_code == HTTPStatus.NOT_FOUND
        assert error_code(response) == 7404


# --- SQL ------------------------------------------------------------------------------


def test_statements_run_for_real_with_one_result_each(api, db):
    results = ok(
        query(
            api,
            db,
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, score REAL);\n"
            "INSERT INTO users (name, score) VALUES ('ada', 1.5),"
            " ('bob; not split', 2);\n-- a trailing comment; with a semicolon\n",
        )
    )
    assert len(results) == 2
    created, inserted = results
    assert created["success"] is True
    assert created["meta"]["changed_db"] is True
    assert inserted["meta"]["changes"] == 2
    assert inserted["meta"]["rows_written"] == 2
    assert inserted["meta"]["last_row_id"] == 2
    assert inserted["meta"]["size_after"] > 0
    assert isinstance(inserted["meta"]["duration"], float)

    selected = ok(query(api, db, "SELECT name, score FROM users ORDER BY id"))
    assert selected[0]["results"] == [
        {"name": "ada", "score": 1.5},
        {"name": "bob; not split", "score": 2.0},
    ]
    assert selected[0]["meta"]["changed_db"] is False
    assert selected[0]["meta"]["rows_read"] == 2

    stored = D1Database.objects.get(uuid=db["uuid"])
    assert stored.table_count == 1
    assert stored.file_size == inserted["meta"]["size_after"]
    assert Path(default_storage.path(stored.storage_name)).stat().st_size > 0


def test_bound_parameters_blobs_and_the_raw_shape(api, db):
    ok(query(api, db, "CREATE TABLE t (a, b, c, d)"))
    ok(query(api, db, "INSERT INTO t VALUES (?, ?, ?, ?)", ["x", 7, "x", True]))
    assert rows(api, db, "SELECT * FROM t") == [{"a": "x", "b": 7, "c": "x", "d": 1}]
    ok(query(api, db, "UPDATE t SET d = ?", [[0, 1, 255]]))
    assert rows(api, db, "SELECT d FROM t") == [{"d": [0, 1, 255]}]
    raw = ok(query(api, db, "SELECT a, b AS a FROM t", path="raw"))
    assert raw[0]["results"] == {"columns": ["a", "a"], "rows": [["x", 7]]}


def test_a_batch_runs_in_order_as_one_call(api, db):
    body = {
        "batch": [
            {"sql": "CREATE TABLE t (n)"},
            {"sql": "INSERT INTO t VALUES (?)", "params": [1]},
            {"sql": "INSERT INTO t VALUES (?)", "params": [2]},
            {"sql": "SELECT sum(n) AS s FROM t"},
        ]
    }
    results = ok(api.post(f"{DB}/{db['uuid']}/query", body))
    assert results[-1]["results"] == [{"s": 3}]


def test_triggers_keep_their_inner_semicolons(api, db):
    ok(
        query(
            api,
            db,
            "CREATE TABLE t (n); CREATE TABLE log (n);"
            "CREATE TRIGGER copy AFTER INSERT ON t BEGIN "
            "INSERT INTO log VALUES (new.n); INSERT INTO log VALUES (-new.n); END;"
            "INSERT INTO t VALUES (5);",
        )
    )
    assert rows(api, db, "SELECT n FROM log ORDER BY n") == [{"n": -5}, {"n": 5}]


def test_bad_sql_is_7500_with_sqlites_message_and_nothing_stays(api, db):
    ok(query(api, db, "CREATE TABLE t (n UNIQUE)"))
    response = query(api, db, "INSERT INTO t VALUES (1); SELEC oops")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == 7500
    assert 'near "SELEC": syntax error' in response.json()["errors"][0]["message"]
    # The first statement of the failed call was rolled back with it.
    assert rows(api, db, "SELECT count(*) AS n FROM t") == [{"n": 0}]

    clash = query(api, db, "INSERT INTO t VALUES (1); INSERT INTO t VALUES (1)")
    assert "UNIQUE constraint failed" in clash.json()["errors"][0]["message"]
    assert rows(api, db, "SELECT count(*) AS n FROM t") == [{"n": 0}]


@pytest.mark.parametrize(
    ("sql", "params", "says"),
    [
        ("SELECT ?", [1, 2], "bindings"),
        ("SELECT ?", [{"no": "objects"}], "parameter"),
        ("SELECT ?", [2**70], "too large"),
        ("SELECT 1; SELECT ?", [1], "single statement"),
        ("   -- nothing\n;", None, "No SQL"),
        ("SELECT 'a\x00b'", None, "null character"),
        ("SELECT * FROM missing", None, "no such table"),
    ],
)
def test_every_bad_query_is_a_clean_7500(api, db, sql, params, says):
    response = query(api, db, sql, params)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == 7500
    assert says in response.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    "body", [b"not json", b"[]", b'{"sql": 5}', b'{"sql": "SELECT 1", "params": 3}']
)
def test_malformed_query_bodies_are_400(api, db, body):
    response = api.post(f"{DB}/{db['uuid']}/query", body)
    assert response.status_code == HTTPStatus.BAD_REQUEST


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        ("ATTACH DATABASE '/tmp/elsewhere.db' AS other", "ATTACH"),
        ("VACUUM INTO '/tmp/copy.db'", "VACUUM"),
        ("SELECT load_extension('/tmp/evil.so')", "load_extension"),
        ("PRAGMA journal_mode = OFF", "PRAGMA journal_mode"),
        ("PRAGMA max_page_count = 999999999", "PRAGMA max_page_count"),
        ("PRAGMA writable_schema = ON", "PRAGMA writable_schema"),
        ("BEGIN TRANSACTION", "Transaction statements"),
        ("SAVEPOINT s", "Transaction statements"),
    ],
)
def test_sql_cannot_leave_its_database(api, db, sql, says):
    response = query(api, db, sql)
    assert error_code(response) == 7500
    assert says in response.json()["errors"][0]["message"]
    assert not Path("/tmp/copy.db").exists()
    assert not Path("/tmp/elsewhere.db").exists()


def test_d1s_informational_pragmas_work(api, db):
    ok(query(api, db, "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)"))
    info = rows(api, db, "PRAGMA table_info(t)")
    assert [column["name"] for column in info] == ["id", "name"]
    assert rows(api, db, "SELECT name FROM pragma_table_list WHERE name = 't'") == [
        {"name": "t"}
    ]
    ok(query(api, db, "PRAGMA defer_foreign_keys = ON"))


def test_foreign_keys_are_enforced_as_on_d1(api, db):
    ok(
        query(
            api,
            db,
            "CREATE TABLE a (id INTEGER PRIMARY KEY);"
            "CREATE TABLE b (a_id INTEGER REFERENCES a(id))",
        )
    )
    response = query(api, db, "INSERT INTO b VALUES (42)")
    assert "FOREIGN KEY constraint failed" in response.json()["errors"][0]["message"]


def test_a_full_database_stops_cleanly_and_keeps_what_it_had(api, db, settings):
    settings.CLAIMPORTAL_D1_MAX_DATABASE_BYTES = 64 * 1024
    ok(query(api, db, "CREATE TABLE t (b BLOB); INSERT INTO t VALUES (zeroblob(1000))"))
    response = query(
        api,
        db,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)"
        " INSERT INTO t SELECT zeroblob(1000) FROM n",
    )
    assert error_code(response) == 7500
    assert "database is full" in response.json()["errors"][0]["message"]
    assert rows(api, db, "SELECT count(*) AS n FROM t") == [{"n": 1}]


def test_a_runaway_query_is_stopped_at_the_time_limit(api, db, settings):
    settings.CLAIMPORTAL_D1_QUERY_SECONDS = 1
    response = query(
        api,
        db,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
        "SELECT count(*) FROM n",
    )
    assert error_code(response) == 7500
    assert "longer than 1 seconds" in response.json()["errors"][0]["message"]


def test_results_are_bounded(api, db, settings):
    settings.CLAIMPORTAL_D1_MAX_RESULT_BYTES = 10_000
    response = query(
        api,
        db,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)"
        " SELECT printf('%.200c', 'x') FROM n",
    )
    assert error_code(response) == 7500
    assert "larger than 10000 bytes" in response.json()["errors"][0]["message"]
    long_value = query(api, db, "SELECT zeroblob(3000000)")
    assert "too big" in long_value.json()["errors"][0]["message"]


def test_statement_splitting():
    assert d1.split_statements("SELECT 1; SELECT ';'; -- c;\n/* x; */ ; ") == [
        "SELECT 1;",
        "SELECT ';';",
    ]
    assert d1.split_statements("SELECT 1") == ["SELECT 1"]


# --- Import (d1 execute --file --remote) and export -----------------------------------


def import_file(api, db, sql: bytes) -> dict:
    """What wrangler does: init, PUT the file to upload_url, ingest."""
    etag = hashlib.md5(sql, usedforsecurity=False).hexdigest()
    init = ok(api.post(f"{DB}/{db['uuid']}/import", {"action": "init", "etag": etag}))
    upload = api.client.put(urlsplit(init["upload_url"]).path, sql, content_type="")
    assert upload.status_code == HTTPStatus.OK
    assert upload["ETag"].strip('"') == etag
    body = {"action": "ingest", "filename": init["filename"], "etag": etag}
    return ok(api.post(f"{DB}/{db['uuid']}/import", body))


def test_import_runs_the_uploaded_file(api, db, settings):
    sql = b"CREATE TABLE t (n);\nINSERT INTO t VALUES (1);\nINSERT INTO t VALUES (2);\n"
    done = import_file(api, db, sql)
    assert done["success"] is True
    assert done["status"] == "complete"
    assert done["result"]["num_queries"] == 3
    assert done["result"]["meta"]["rows_written"] == 2
    assert done["result"]["final_bookmark"]
    assert rows(api, db, "SELECT sum(n) AS s FROM t") == [{"s": 3}]
    assert list(Path(settings.MEDIA_ROOT).rglob("*.sql")) == []  # discarded


def test_a_failing_import_reports_an_error_status_and_changes_nothing(api, db):
    done = import_file(api, db, b"CREATE TABLE t (n); INSERT INTO nope VALUES (1);")
    assert done["status"] == "error"
    assert "no such table: nope" in done["errors"][0]
    assert rows(api, db, "SELECT count(*) AS n FROM sqlite_schema") == [{"n": 0}]


def test_the_upload_must_match_its_checksum_and_link(api, db, settings):
    etag = hashlib.md5(b"SELECT 1;", usedforsecurity=False).hexdigest()
    init = ok(api.post(f"{DB}/{db['uuid']}/import", {"action": "init", "etag": etag}))
    path = urlsplit(init["upload_url"]).path
    wrong = api.client.put(path, b"SELECT 2;", content_type="")
    assert wrong.status_code == HTTPStatus.BAD_REQUEST
    # Uploading twice keeps one waiting file.
    assert api.client.put(path, b"SELECT 1;", content_type="").status_code == 200
    assert api.client.put(path, b"SELECT 1;", content_type="").status_code == 200
    assert len(list(Path(settings.MEDIA_ROOT).rglob("*.sql"))) == 1
    forged = api.client.put(path[:-3] + "xyz", b"SELECT 1;", content_type="")
    assert forged.status_code == HTTPStatus.NOT_FOUND
    not_uploaded = api.post(
        f"{DB}/{db['uuid']}/import", {"action": "ingest", "etag": "0" * 32}
    )
    assert ok(not_uploaded)["status"] == "error"
    bad = api.post(f"{DB}/{db['uuid']}/import", {"action": "init", "etag": "short"})
    assert bad.status_code == HTTPStatus.BAD_REQUEST
    assert api.post(f"{DB}/{db['uuid']}/import", {"action": "nope"}).status_code == 400


def test_export_round_trips_through_import(api, db):
    ok(
        query(
            api,
            db,
            "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, s TEXT, b BLOB,"
            " f REAL); CREATE INDEX t_s ON t (s);"
            "INSERT INTO t (s, b, f) VALUES ('it''s', x'00ff', 1.25), (NULL, NULL, 3);",
        )
    )
    export = ok(
        api.post(
            f"{DB}/{db['uuid']}/export",
            {"output_format": "polling", "dump_options": {}},
        )
    )
    assert export["status"] == "complete"
    link = urlsplit(export["result"]["signed_url"]).path
    dump = api.client.get(link)
    assert dump.status_code == HTTPStatus.OK
    sql = b"".join(dump.streaming_content)
    assert b"CREATE INDEX t_s" in sql
    again = api.client.get(link)  # a download link works once
    assert (again.status_code, error_code(again)) == (HTTPStatus.GONE, 7410)

    copy = ok(api.post(DB, {"name": "copy"}))
    assert import_file(api, copy, sql)["status"] == "complete"
    select = "SELECT id, s, b, f FROM t ORDER BY id"
    assert rows(api, copy, select) == rows(api, db, select)
    only_schema = ok(
        api.post(f"{DB}/{db['uuid']}/export", {"dump_options": {"no_data": True}})
    )
    schema = api.client.get(urlsplit(only_schema["result"]["signed_url"]).path)
    assert b"INSERT" not in b"".join(schema.streaming_content)


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_are_serialized_and_all_land(provision, now, settings):
    """Real concurrent requests on one database: none fails, none is lost."""
    settings.CLAIMPORTAL_D1_MAX_CONCURRENT = 6  # all of them at once
    account = provision().account
    database = d1.create_database(account=account, name="busy", now=now)
    d1.run_queries(database=database, queries=[d1.Query("CREATE TABLE t (n)")])

    def write(i: int) -> None:
        for j in range(5):
            d1.run_queries(
                database=database,
                queries=[d1.Query("INSERT INTO t VALUES (?)", [i * 10 + j])],
            )

    concurrently(6, write)
    [result] = d1.run_queries(
        database=database, queries=[d1.Query("SELECT count(*) AS n FROM t")]
    )
    assert result.rows == [[30]]


@pytest.mark.parametrize("path", [f"{DB}/a%00b", f"{DB}?name=%00", f"{DB}/%00/query"])
def test_odd_names_are_4xx_never_5xx(api, path):
    for method in ("get", "post", "delete"):
        assert 400 <= api.call(method, path).status_code < 500


# --- Limits: the export bomb, export size and time, concurrent calls ---------------

BOMB = (
    "CREATE TABLE bomb (n INTEGER PRIMARY KEY, pad BLOB AS (zeroblob(1000000)) "
    "VIRTUAL); INSERT INTO bomb (n) WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL "
    "SELECT i + 1 FROM c WHERE i < 600) SELECT i FROM c"
)


def export_link(api, db, **options) -> str:
    export = ok(api.post(f"{DB}/{db['uuid']}/export", {"dump_options": options}))
    return urlsplit(export["result"]["signed_url"]).path


def test_a_virtual_column_does_not_make_a_small_database_a_huge_export(api, db):
    """600 rows of nothing stored, each 1 MB when read: the export carries the
    stored columns only, and an import computes the rest again."""
    ok(query(api, db, BOMB))
    dump = api.client.get(export_link(api, db))
    assert dump.status_code == HTTPStatus.OK
    sql = b"".join(dump.streaming_content)
    assert len(sql) < 50_000
    assert b'INSERT INTO "bomb"("n") VALUES(600);' in sql

    copy = ok(api.post(DB, {"name": "copy"}))
    assert import_file(api, copy, sql)["status"] == "complete"
    assert rows(api, copy, "SELECT count(*) AS n, sum(length(pad)) AS b FROM bomb") == [
        {"n": 600, "b": 600_000_000}
    ]


def test_an_export_over_the_byte_cap_is_refused_in_the_envelope(api, db, settings):
    ok(query(api, db, "CREATE TABLE t (b BLOB); INSERT INTO t VALUES (zeroblob(6000))"))
    settings.CLAIMPORTAL_D1_MAX_EXPORT_BYTES = 10_000  # the blob is 12,000 in hex
    refused = api.client.get(export_link(api, db))
    assert refused.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert error_code(refused) == 7413
    assert "larger than 10000 bytes" in refused.json()["errors"][0]["message"]
    settings.CLAIMPORTAL_D1_MAX_EXPORT_BYTES = 13_000
    assert api.client.get(export_link(api, db)).status_code == HTTPStatus.OK


def test_an_export_has_the_time_limit_of_a_query(api, db, settings):
    ok(
        query(
            api,
            db,
            "CREATE TABLE t (n); INSERT INTO t WITH RECURSIVE c(i) AS (SELECT 1 "
            "UNION ALL SELECT i + 1 FROM c WHERE i < 20000) SELECT i FROM c",
        )
    )
    settings.CLAIMPORTAL_D1_QUERY_SECONDS = 0  # out of time at the first check
    stopped = api.client.get(export_link(api, db))
    assert stopped.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(stopped) == 7500
    assert "SQLITE_INTERRUPT" in stopped.json()["errors"][0]["message"]


@pytest.mark.django_db(transaction=True)
def test_an_account_gets_a_clear_429_past_its_concurrent_d1_calls(
    client, provision, now, settings
):
    """Two calls waiting for their databases' write locks hold the account's
    two turns: a third call is refused at once, another account is served, and
    the turns come back afterwards."""
    from django.core.cache import caches

    settings.CLAIMPORTAL_D1_MAX_CONCURRENT = 2
    busy, calm = (AccountClient(client, provision()) for _ in range(2))
    databases = [ok(busy.post(DB, {"name": f"slow{i}"})) for i in range(2)]
    other = ok(calm.post(DB, {"name": "calm"}))
    stored = [D1Database.objects.get(uuid=database["uuid"]) for database in databases]
    # Another writer holds each file's SQLite lock, so each call waits its turn
    # out without using the CPU a long-running query would.
    holders = [
        sqlite3.connect(default_storage.path(database.storage_name))
        for database in stored
    ]
    for holder in holders:
        holder.execute("BEGIN IMMEDIATE")

    def waiting(database: D1Database) -> list[d1.StatementResult]:
        return d1.run_queries(database=database, queries=[d1.Query("SELECT 1")])

    turns = [f"slot:d1:{busy.account.pk}:{i}" for i in range(2)]
    with ThreadPoolExecutor(2) as pool:
        running = [pool.submit(waiting, database) for database in stored]
        try:
            deadline = time.monotonic() + 20
            while not all(caches["default"].get(turn) for turn in turns):
                assert time.monotonic() < deadline, "the calls never took a turn"
                time.sleep(0.05)
            refused = query(busy, databases[0], "SELECT 1")
            served = query(calm, other, "SELECT 1")
        finally:
            for holder in holders:
                holder.close()
        answers = [future.result(timeout=60) for future in running]

    assert refused.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert error_code(refused) == 7429
    assert int(refused["Retry-After"]) > 0
    assert served.status_code == HTTPStatus.OK
    assert [answer[0].rows for answer in answers] == [[[1]]] * 2
    assert query(busy, databases[0], "SELECT 1").status_code == HTTPStatus.OK


def test_a_refused_link_is_logged_without_its_token(api, db, caplog):
    link = export_link(api, db)
    api.client.get(link)
    with caplog.at_level("WARNING", logger="django.request"):
        assert api.client.get(link).status_code == HTTPStatus.GONE
    token = link.rsplit("/", 1)[1]
    assert "export-download/<token>" in caplog.text
    assert token not in caplog.text
