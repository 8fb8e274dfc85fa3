"""D1: real SQLite databases, one file each, kept through Django's default storage.

SQL runs for real. ``run_queries`` is shared by the client/v4 API and the preview
runtime's D1 binding: the statements of one call run as one transaction, callers of
a database take turns on SQLite's own file lock (so any number of web processes can
share the files), and an authorizer keeps the SQL inside its own database (no
ATTACH, no extension loading, no PRAGMA that changes storage).

The file is opened by path, so the default storage must be a local filesystem
(FileSystemStorage). An object store would need a working copy and a lock of its
own (e.g. select_for_update on the D1Database row): download, run, upload back
before the lock is released.
"""

import hashlib
import math
import re
import secrets
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any
from urllib.parse import quote

from django.conf import settings
from django.core import signing
from django.core.cache import caches
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from accounts.exceptions import (
    Conflict,
    D1ExportTooLarge,
    D1TooBusy,
    DomainError,
    InvalidInput,
    LinkRevoked,
    LinkUsed,
    NotFound,
    ServiceUnavailable,
)
from accounts.models import CloudAccount, D1Database, account_storage_prefix
from accounts.services import d1_time_travel, metrics
from accounts.services.concurrency import slot
from accounts.services.locking import lock_live_account
from accounts.services.validation import clean_text
from claimportal.cache import CACHE_DOWN

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# SQLite limits that mirror D1's: a 2 MB string/blob/row, 100 KB of SQL per
# statement, 100 bound parameters.
MAX_VALUE_BYTES = 2_000_000
MAX_STATEMENT_BYTES = 100_000
MAX_PARAMS = 100


class DatabaseNotFound(NotFound):
    code = 7404
    message = "The database could not be found."


class DatabaseExists(Conflict):
    code = 7502
    message = "A database with that name already exists."


class TooManyDatabases(DomainError):
    code = 7406
    message = "This account has as many D1 databases as it may have."


class QueryError(DomainError):
    """SQL that SQLite refused or that broke a limit; nothing of the call stays."""

    code = 7500
    message = "The query failed."


# --- Databases ---------------------------------------------------------------------


def list_databases(*, account: CloudAccount, name: str = "") -> QuerySet[D1Database]:
    rows = account.d1_databases.order_by("created_at", "name")
    if not name:
        return rows
    return rows.filter(name=clean_text(name, field="name", max_length=64))


def get_database(*, account: CloudAccount, id_or_name: str) -> D1Database:
    """The account's database with that uuid or name; DatabaseNotFound otherwise."""
    id_or_name = clean_text(id_or_name, field="database", max_length=64)
    rows = account.d1_databases.all()
    found = None
    if _is_uuid(id_or_name):
        found = rows.filter(uuid=id_or_name).first()
    if found is None:
        found = rows.filter(name=id_or_name).first()
    if found is None:
        raise DatabaseNotFound(f"The database {id_or_name} could not be found.")
    return found


def _is_uuid(value: str) -> bool:
    return bool(
        re.fullmatch(r"[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}", value)
    )


def create_database(*, account: CloudAccount, name: Any, now: datetime) -> D1Database:
    """A new, empty database and its file.

    Raises InvalidInput (bad name), DatabaseExists (7502, as wrangler expects),
    TooManyDatabases (7406, which wrangler explains).
    """
    name = clean_text(name, field="name", max_length=64)
    if not NAME_PATTERN.match(name):
        raise InvalidInput(
            "A D1 database name is 1 to 64 letters, digits, '-' or '_', "
            "starting with a letter or digit."
        )
    database = D1Database(account=account, name=name, created_at=now)
    # An empty file is a valid SQLite database; SQLite writes the header on first use.
    database.storage_name = default_storage.save(
        f"{account_storage_prefix(account.pk)}/d1/{database.uuid}.sqlite3",
        ContentFile(b""),
    )
    try:
        with transaction.atomic():
            lock_live_account(account_id=account.pk, now=now)
            if account.d1_databases.filter(name=name).exists():
                raise DatabaseExists()
            if account.d1_databases.count() >= settings.CLAIMPORTAL_D1_MAX_DATABASES:
                raise TooManyDatabases(
                    f"An account may have {settings.CLAIMPORTAL_D1_MAX_DATABASES} "
                    "D1 databases; delete one first."
                )
            database.save()
    except IntegrityError as exc:
        default_storage.delete(database.storage_name)
        raise DatabaseExists() from exc
    except BaseException:
        default_storage.delete(database.storage_name)
        raise
    return database


def delete_database(*, account: CloudAccount, id_or_name: str) -> None:
    """Delete a database and, once that is committed, its file. A query still
    running finishes on the unlinked file. Raises DatabaseNotFound."""
    database = get_database(account=account, id_or_name=id_or_name)
    storage_name, imports = database.storage_name, _imports_folder(database)
    history = d1_time_travel.folder(database)
    with transaction.atomic():
        lock_live_account(account_id=account.pk)
        database.delete()
        transaction.on_commit(lambda: _discard_folder(imports))
        transaction.on_commit(lambda: _discard_folder(history))
        if storage_name:
            transaction.on_commit(lambda: default_storage.delete(storage_name))


# --- Running SQL ------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """One entry of a call: SQL text (one or more statements) and its parameters."""

    sql: str
    params: list[Any] = field(default_factory=list)


@dataclass
class StatementResult:
    columns: list[str]
    rows: list[list[Any]]
    meta: dict[str, Any]

    def as_objects(self) -> dict[str, Any]:
        """The shape of D1's ``/query``: rows as objects keyed by column."""
        return {
            "results": [dict(zip(self.columns, row, strict=True)) for row in self.rows],
            "success": True,
            "meta": self.meta,
        }

    def as_raw(self) -> dict[str, Any]:
        """The shape of D1's ``/raw``: column names once, rows as arrays."""
        return {
            "results": {"columns": self.columns, "rows": self.rows},
            "success": True,
            "meta": self.meta,
        }


def run_queries(*, database: D1Database, queries: list[Query]) -> list[StatementResult]:
    """Run every statement of ``queries`` in order, all or nothing, and return one
    result per statement (a query's SQL may hold several).

    Raises QueryError (7500) with SQLite's message for bad SQL, a wrong number of
    parameters, a denied feature, a full database, or a query over the time or
    result-size limit; DatabaseNotFound if the database was deleted meanwhile.
    """
    statements = []
    for query in queries:
        parts = split_statements(query.sql)
        if query.params and len(parts) > 1:
            raise QueryError(
                "Parameters can be bound to a single statement only; send each "
                "statement as its own query of the batch."
            )
        statements += [(part, [_param(p) for p in query.params]) for part in parts]
    if not statements:
        raise QueryError("No SQL statement to run.")
    with _account_turn(database), _session(database) as session:
        results = [session.run(sql, params) for sql, params in statements]
    metrics.record(
        database=database,
        statements=[
            (sql, {**r.meta, "rows_returned": len(r.rows)})
            for (sql, _), r in zip(statements, results, strict=True)
        ],
        now=datetime.now(UTC),
    )
    return results


@contextmanager
def _account_turn(database: D1Database) -> Iterator[None]:
    """One of the account's CLAIMPORTAL_D1_MAX_CONCURRENT slots for the body,
    so one account's slow SQL cannot hold every web thread; D1TooBusy (429)
    when all are taken."""
    seconds = settings.CLAIMPORTAL_D1_QUERY_SECONDS
    with slot(
        name=f"d1:{database.account_id}",
        limit=settings.CLAIMPORTAL_D1_MAX_CONCURRENT,
        # Waiting for the file lock and running may each take the time limit.
        seconds=2 * seconds + 5,
    ) as free:
        if not free:
            raise D1TooBusy(retry_after=seconds)
        yield


def execute_script(*, database: D1Database, sql: str) -> list[StatementResult]:
    """Run a whole SQL text (an import) as one transaction."""
    return run_queries(database=database, queries=[Query(sql=sql)])


def summarize(results: list[StatementResult]) -> dict[str, Any]:
    """Totals over a call, in the ``meta`` shape D1 uses for imports."""
    return {
        "duration": sum(r.meta["duration"] for r in results),
        "rows_read": sum(r.meta["rows_read"] for r in results),
        "rows_written": sum(r.meta["rows_written"] for r in results),
        "size_after": results[-1].meta["size_after"] if results else 0,
        "changed_db": any(r.meta["changed_db"] for r in results),
    }


def _param(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if value is None or isinstance(value, int | float | str):
        return value
    if isinstance(value, list) and all(
        isinstance(b, int) and not isinstance(b, bool) and 0 <= b < 256 for b in value
    ):
        return bytes(value)  # how D1 clients send an ArrayBuffer
    raise QueryError(
        "A parameter must be a string, number, boolean, null or an array of bytes."
    )


def split_statements(sql: str) -> list[str]:
    """The statements of a SQL text, without empty or comment-only ones.

    SQLite's own ``complete_statement`` decides where one ends, so semicolons in
    strings, comments and trigger bodies do not split.
    """
    statements, buffer = [], ""
    pieces = sql.split(";")
    for index, piece in enumerate(pieces):
        buffer += piece if index == len(pieces) - 1 else piece + ";"
        if index < len(pieces) - 1 and not sqlite3.complete_statement(buffer):
            continue
        if _strip_comments(buffer).strip(" \t\r\n\f;"):
            statements.append(buffer.strip())
        buffer = ""
    return statements


def _strip_comments(sql: str) -> str:
    """``sql`` without -- and /* */ comments (quotes respected)."""
    out, i, quote = [], 0, ""
    while i < len(sql):
        char = sql[i]
        if quote:
            out.append(char)
            if char == quote:
                quote = ""
        elif char in "'\"`[":
            quote = "]" if char == "[" else char
            out.append(char)
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = len(sql) if end < 0 else end
            continue
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = len(sql) if end < 0 else end + 2
            continue
        else:
            out.append(char)
        i += 1
    return "".join(out)


# Pragmas D1 lets a query use; anything else (journal_mode, max_page_count,
# writable_schema, temp_store_directory ...) could change or leave the database.
ALLOWED_PRAGMAS = frozenset(
    {
        "case_sensitive_like",
        "collation_list",
        "defer_foreign_keys",
        "foreign_key_check",
        "foreign_key_list",
        "foreign_keys",
        "function_list",
        "ignore_check_constraints",
        "index_info",
        "index_list",
        "index_xinfo",
        "legacy_alter_table",
        "optimize",
        "quick_check",
        "recursive_triggers",
        "reverse_unordered_selects",
        "table_info",
        "table_list",
        "table_xinfo",
    }
)
DENIED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer"})


class _Session:
    """One open SQLite connection inside one transaction, under the row lock."""

    def __init__(self, connection: sqlite3.Connection, deadline: float) -> None:
        self.connection = connection
        self.deadline = deadline
        self.denied = ""
        self.result_bytes = 0
        self.changed = False

    def authorize(
        self, action: int, arg1: str | None, arg2: str | None, *_: str | None
    ) -> int:
        if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
            self.denied = "ATTACH, DETACH and VACUUM INTO are not allowed in D1."
        elif action in (sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT):
            self.denied = (
                "Transaction statements (BEGIN, COMMIT, SAVEPOINT ...) are not "
                "allowed: the statements of one call already run as one transaction."
            )
        elif action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() not in (
            ALLOWED_PRAGMAS
        ):
            self.denied = f"PRAGMA {arg1} is not allowed in D1."
        elif action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in (
            DENIED_FUNCTIONS
        ):
            self.denied = f"The function {arg2}() is not allowed in D1."
        else:
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_DENY

    def past_deadline(self) -> int:
        return int(time.monotonic() > self.deadline)

    def run(self, sql: str, params: list[Any]) -> StatementResult:
        started = time.perf_counter()
        before = self.connection.total_changes
        self.denied = ""
        try:
            cursor = self.connection.execute(sql, params)
            columns = [d[0] for d in cursor.description or []]
            rows = [self._row(row) for row in self._fetch(cursor)]
        except (sqlite3.Error, OverflowError, UnicodeError, ValueError) as exc:
            raise QueryError(self._explain(exc)) from exc
        changes = max(cursor.rowcount, 0)
        changed = self.connection.total_changes != before or _is_schema_change(sql)
        self.changed = self.changed or changed
        return StatementResult(
            columns=columns,
            rows=rows,
            meta={
                "served_by": "claimportal",
                "duration": round((time.perf_counter() - started) * 1000, 3),
                "changes": changes,
                "last_row_id": cursor.lastrowid or 0,
                "changed_db": changed,
                "size_after": self.size(),
                # SQLite's per-statement counters are not exposed to Python: rows
                # returned (or changed) stand in for rows read (or written).
                "rows_read": len(rows) or changes,
                "rows_written": changes,
            },
        )

    def _fetch(self, cursor: sqlite3.Cursor) -> Iterator[tuple]:
        limit = settings.CLAIMPORTAL_D1_MAX_RESULT_BYTES
        while batch := cursor.fetchmany(500):
            for row in batch:
                self.result_bytes += sum(
                    len(v) if isinstance(v, str | bytes) else 8 for v in row
                )
                if self.result_bytes > limit:
                    raise QueryError(
                        f"The result is larger than {limit} bytes; select fewer "
                        "rows or columns (use LIMIT)."
                    )
                yield row

    @staticmethod
    def _row(row: tuple) -> list[Any]:
        return [
            list(v)
            if isinstance(v, bytes)
            else None
            if isinstance(v, float) and not math.isfinite(v)
            else v
            for v in row
        ]

    def _explain(self, exc: BaseException) -> str:
        message = str(exc)
        if self.denied and "not authorized" in message:
            return f"{self.denied} (not authorized: SQLITE_AUTH)"
        if message == "interrupted":
            return (
                f"The query ran longer than {settings.CLAIMPORTAL_D1_QUERY_SECONDS} "
                "seconds and was stopped: SQLITE_INTERRUPT"
            )
        name = getattr(exc, "sqlite_errorname", None)
        if name == "SQLITE_FULL":
            return (
                "The database is full: a D1 database here may hold "
                f"{settings.CLAIMPORTAL_D1_MAX_DATABASE_BYTES} bytes: SQLITE_FULL"
            )
        return f"{message}: {name}" if name else message

    def size(self) -> int:
        self.connection.set_authorizer(None)
        try:
            page_count = self.connection.execute("PRAGMA page_count").fetchone()[0]
            page_size = self.connection.execute("PRAGMA page_size").fetchone()[0]
        finally:
            self.connection.set_authorizer(self.authorize)
        return page_count * page_size


def _is_schema_change(sql: str) -> bool:
    return bool(re.match(r"\s*(CREATE|DROP|ALTER)\b", _strip_comments(sql), re.I))


def _connect(database: D1Database) -> sqlite3.Connection:
    path = quote(default_storage.path(database.storage_name))
    try:
        # mode=rw: a file deleted meanwhile is not silently re-created empty.
        return sqlite3.connect(
            f"file:{path}?mode=rw",
            uri=True,
            isolation_level=None,
            timeout=settings.CLAIMPORTAL_D1_QUERY_SECONDS,
        )
    except sqlite3.OperationalError as exc:
        raise DatabaseNotFound() from exc


def _begin(conn: sqlite3.Connection, database: D1Database) -> None:
    """Take SQLite's write lock, then keep the state the call may change."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        raise QueryError(f"{exc}: the database stayed busy.") from exc
    d1_time_travel.keep_state(database=database, now=datetime.now(UTC))


@contextmanager
def write_lock(database: D1Database) -> Iterator[sqlite3.Connection]:
    """A plain connection to the database's file in one write transaction, for
    our own maintenance (a time-travel restore): committed, with the new size
    recorded, when the body returns; rolled back if it raises."""
    with closing(_connect(database)) as conn:
        _begin(conn, database)
        try:
            yield conn
            _record_size(database, conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


@contextmanager
def _session(database: D1Database) -> Iterator[_Session]:
    """Open the database's file with D1's limits and run the body as one SQLite
    transaction, recording the new size and table count of a write.

    BEGIN IMMEDIATE takes SQLite's own write lock, a file lock: callers of one
    database take turns across threads and processes (waiting up to the query
    time limit), and reads cost no write to PostgreSQL.
    """
    with closing(_connect(database)) as conn:
        session = _Session(
            conn, time.monotonic() + settings.CLAIMPORTAL_D1_QUERY_SECONDS
        )
        _configure(conn, session)
        _begin(conn, database)
        conn.set_authorizer(session.authorize)
        try:
            yield session
            conn.set_authorizer(None)
            if session.changed:
                # Still under the write lock, so sizes are recorded in order.
                _record_size(database, conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.set_authorizer(None)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def _configure(conn: sqlite3.Connection, session: _Session) -> None:
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
    conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, MAX_STATEMENT_BYTES)
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, MAX_PARAMS)
    conn.set_progress_handler(session.past_deadline, 10_000)
    conn.execute("PRAGMA foreign_keys = ON")  # as D1 does
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    max_pages = max(settings.CLAIMPORTAL_D1_MAX_DATABASE_BYTES // page_size, 1)
    conn.execute(f"PRAGMA max_page_count = {int(max_pages)}")


def _record_size(database: D1Database, conn: sqlite3.Connection) -> None:
    page_count = conn.execute("PRAGMA page_count").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    tables = conn.execute(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' "
        "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'"
    ).fetchone()[0]
    if (database.file_size, database.table_count) == (page_count * page_size, tables):
        return  # a read: nothing the inventory shows has changed
    database.file_size, database.table_count = page_count * page_size, tables
    D1Database.objects.filter(pk=database.pk).update(
        file_size=database.file_size, table_count=database.table_count
    )


# --- Imports (wrangler d1 execute --file --remote) ---------------------------------


def _imports_folder(database: D1Database) -> str:
    return f"{account_storage_prefix(database.account_id)}/d1-imports/{database.uuid}"


def import_upload_name(*, database: D1Database, etag: str) -> str:
    return f"{_imports_folder(database)}/{etag}.sql"


def discard_imports(*, database: D1Database) -> None:
    """Delete the SQL files uploaded for ``database`` and not ingested."""
    _discard_folder(_imports_folder(database))


def _discard_folder(folder: str) -> None:
    try:
        _, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in files:
        default_storage.delete(f"{folder}/{name}")


def receive_import(*, database: D1Database, etag: str, data: bytes) -> str:
    """Keep an uploaded SQL file until it is ingested; returns its MD5.

    Raises InvalidInput when the bytes do not have the MD5 announced at init.
    """
    digest = hashlib.md5(data, usedforsecurity=False).hexdigest()
    if digest != etag:
        raise InvalidInput(
            "The uploaded file does not match the checksum announced at init."
        )
    discard_imports(database=database)  # at most one waiting upload per database
    default_storage.save(
        import_upload_name(database=database, etag=etag), ContentFile(data)
    )
    return digest


def ingest_import(*, database: D1Database, etag: str) -> list[StatementResult]:
    """Run an uploaded SQL file as one transaction and discard it.

    Raises QueryError (bad SQL, or no such upload).
    """
    name = import_upload_name(database=database, etag=etag)
    if not default_storage.exists(name):
        raise QueryError("No uploaded file with that checksum; upload it first.")
    with default_storage.open(name, "rb") as handle:
        data = handle.read()
    try:
        sql = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise QueryError("The SQL file is not UTF-8 text.") from exc
    try:
        return execute_script(database=database, sql=sql)
    finally:
        default_storage.delete(name)


# --- Exports (wrangler d1 export --remote) -----------------------------------------


def export_file(
    *,
    database: D1Database,
    tables: list[str] | None = None,
    no_schema: bool = False,
    no_data: bool = False,
) -> IO[bytes]:
    """The database as SQL text that ``/import`` (ours or D1's) accepts, in a
    temporary file, rewound: memory stays flat however large it is, and the
    database is free again before a slow client has read a byte.

    Made under the limits of a query: the account's turn, the time limit and
    the value length; and at most CLAIMPORTAL_D1_MAX_EXPORT_BYTES in all.
    Generated columns are left out (an import computes them again), so a
    virtual column cannot make a small database export as a huge one.
    Raises D1TooBusy, D1ExportTooLarge, QueryError (time limit, too-long value).
    """
    cap = settings.CLAIMPORTAL_D1_MAX_EXPORT_BYTES
    out = tempfile.TemporaryFile()  # noqa: SIM115 (the caller closes it)
    try:
        with _account_turn(database), _snapshot(database) as session:
            written = 0
            lines = _dump_lines(
                session.connection,
                tables=tables,
                no_schema=no_schema,
                no_data=no_data,
            )
            try:
                for line in lines:
                    data = line.encode("utf-8", "surrogatepass")
                    written += len(data)
                    if written > cap:
                        raise D1ExportTooLarge(
                            f"The export is larger than {cap} bytes: export fewer "
                            "tables (--table) or the schema alone (--no-data)."
                        )
                    out.write(data)
            except (sqlite3.Error, OverflowError, ValueError) as exc:
                raise QueryError(session._explain(exc)) from exc
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out


@contextmanager
def _snapshot(database: D1Database) -> Iterator["_Session"]:
    """A read-only connection with a query's limits, in one read transaction
    (one consistent snapshot while writers wait)."""
    path = quote(default_storage.path(database.storage_name))
    try:
        conn = sqlite3.connect(
            f"file:{path}?mode=ro",
            uri=True,
            isolation_level=None,
            timeout=settings.CLAIMPORTAL_D1_QUERY_SECONDS,
        )
    except sqlite3.OperationalError as exc:
        raise DatabaseNotFound() from exc
    with closing(conn):
        session = _Session(
            conn, time.monotonic() + settings.CLAIMPORTAL_D1_QUERY_SECONDS
        )
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
        conn.set_progress_handler(session.past_deadline, 10_000)
        try:
            conn.execute("BEGIN")
            yield session
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")


def _dump_lines(
    conn: sqlite3.Connection,
    *,
    tables: list[str] | None,
    no_schema: bool,
    no_data: bool,
) -> Iterator[str]:
    schema = conn.execute(
        "SELECT type, name, sql FROM sqlite_schema WHERE sql IS NOT NULL "
        "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' "
        "ORDER BY type = 'table' DESC, rowid"
    ).fetchall()
    wanted = {
        name
        for kind, name, _ in schema
        if kind == "table" and (not tables or name in tables)
    }
    yield "PRAGMA defer_foreign_keys=TRUE;\n"
    for kind, name, sql in schema:
        if kind == "table" and name in wanted:
            if not no_schema:
                yield f"{sql};\n"
            if not no_data:
                yield from _insert_lines(conn, name)
    if not no_schema:
        for kind, name, sql in schema:
            if kind != "table" and (not tables or _table_of(conn, name) in wanted):
                yield f"{sql};\n"
    if not no_data and not tables and _has_sequence(conn):
        yield "DELETE FROM sqlite_sequence;\n"
        yield from _insert_lines(conn, "sqlite_sequence")


def _insert_lines(conn: sqlite3.Connection, table: str) -> Iterator[str]:
    quoted = _identifier(table)
    columns = [
        _identifier(row[1])
        for row in conn.execute(f"PRAGMA table_xinfo({quoted})")
        if row[6] == 0  # not generated (nor hidden)
    ]
    if not columns:
        return
    listed = ",".join(columns)
    # Named only when some are left out, as sqlite3's own .dump does.
    target = (
        quoted
        if len(columns) == _column_count(conn, quoted)
        else (f"{quoted}({listed})")
    )
    # Row by row: a row may hold 2 MB, and a batch of them would not be flat.
    for row in conn.execute(f"SELECT {listed} FROM {quoted}"):  # noqa: S608
        values = ",".join(_literal(v) for v in row)
        yield f"INSERT INTO {target} VALUES({values});\n"


def _column_count(conn: sqlite3.Connection, quoted: str) -> int:
    return len(conn.execute(f"PRAGMA table_xinfo({quoted})").fetchall())


def _table_of(conn: sqlite3.Connection, name: str) -> str:
    row = conn.execute(
        "SELECT tbl_name FROM sqlite_schema WHERE name = ?", [name]
    ).fetchone()
    return row[0] if row else ""


def _has_sequence(conn: sqlite3.Connection) -> bool:
    return bool(
        conn.execute(
            "SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_sequence'"
        ).fetchone()
    )


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return f"X'{value.hex()}'"
    if isinstance(value, float):
        if math.isinf(value):
            return "9e999" if value > 0 else "-9e999"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


# --- Links for the unauthenticated legs of imports and exports ---------------------

LINK_LIFETIME_SECONDS = 3600
_USED_LINK = "d1:link-used:{}"


def sign_link(
    *, database: D1Database, purpose: str, now: datetime, **claims: Any
) -> str:
    """A token for an upload or download URL: it names the database, when it
    was made and whatever the link may do, and expires after an hour."""
    return signing.dumps(
        {
            "db": str(database.uuid),
            "at": now.timestamp(),
            "nonce": secrets.token_urlsafe(16),
            **claims,
        },
        salt=f"claimportal.d1.{purpose}",
    )


def open_link(
    *, token: str, purpose: str, single_use: bool = False
) -> tuple[D1Database, dict[str, Any]]:
    """The database and claims a link was signed for.

    Raises NotFound when it is forged or expired, DatabaseNotFound when its
    database is gone, LinkRevoked when it was made before the account was
    claimed (a claim ends what the agent held), and with ``single_use``
    LinkUsed when it was opened before (ServiceUnavailable while the cache
    that remembers this is away).
    """
    try:
        claims = signing.loads(
            token, salt=f"claimportal.d1.{purpose}", max_age=LINK_LIFETIME_SECONDS
        )
        made_at, nonce = float(claims["at"]), str(claims["nonce"])
        database = (
            D1Database.objects.select_related("account")
            .filter(uuid=claims["db"])
            .first()
        )
    except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
        raise NotFound("This link is not valid or has expired.") from exc
    if database is None:
        raise DatabaseNotFound()
    claimed_at = database.account.claimed_at
    if claimed_at is not None and made_at <= claimed_at.timestamp():
        raise LinkRevoked()
    if single_use:
        try:
            fresh = caches["strict"].add(
                _USED_LINK.format(nonce), 1, timeout=LINK_LIFETIME_SECONDS + 60
            )
        except CACHE_DOWN as exc:
            raise ServiceUnavailable() from exc
        if not fresh:
            raise LinkUsed()
    return database, claims
