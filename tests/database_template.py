"""One migrated copy of the schema per set of migrations, that every test
database is created from (PostgreSQL's CREATE DATABASE ... TEMPLATE): a test
process copies files instead of running every migration again."""

import contextlib
import hashlib
import sys
from pathlib import Path

import psycopg
from django.conf import settings
from django.db import connection
from django.db.migrations.loader import MigrationLoader


def schema_digest() -> str:
    """Changes whenever a migration or the set of installed apps does."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    digest = hashlib.sha256(repr(settings.INSTALLED_APPS).encode())
    for key in sorted(loader.disk_migrations):
        module = sys.modules[loader.disk_migrations[key].__module__]
        digest.update(repr(key).encode())
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:12]


def _admin_connection() -> psycopg.Connection:
    params = {**connection.get_connection_params(), "dbname": "postgres"}
    return psycopg.connect(**params, autocommit=True)


def _exists(admin: psycopg.Connection, name: str) -> bool:
    found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
    return found.fetchone() is not None


def _migrate_into(name: str) -> None:
    """Django's own test-database creation, into ``name``; the connection's
    settings are put back afterwards."""
    saved_name = connection.settings_dict["NAME"]
    saved_test = dict(connection.settings_dict["TEST"])
    connection.settings_dict["TEST"].update(NAME=name, TEMPLATE=None)
    try:
        connection.creation.create_test_db(verbosity=0, autoclobber=True)
    finally:
        connection.close()
        connection.settings_dict["NAME"] = saved_name
        settings.DATABASES[connection.alias]["NAME"] = saved_name
        connection.settings_dict["TEST"].clear()
        connection.settings_dict["TEST"].update(saved_test)


def ensure_template() -> str:
    """The template's name, built first if these migrations have none yet.

    Parallel test processes build it once between them (an advisory lock), and
    it appears under its name only when complete (built elsewhere, renamed)."""
    prefix = f"test_{connection.settings_dict['NAME']}_template_"
    name = prefix + schema_digest()
    quote = connection.ops.quote_name
    with _admin_connection() as admin:
        admin.execute("SELECT pg_advisory_lock(hashtext(%s))", [prefix])
        try:
            if not _exists(admin, name):
                building = f"{name}_building"
                admin.execute(f"DROP DATABASE IF EXISTS {quote(building)}")
                _migrate_into(building)
                admin.execute(
                    f"ALTER DATABASE {quote(building)} RENAME TO {quote(name)}"
                )
                _drop_older_templates(admin, prefix, keep=name)
        finally:
            admin.execute("SELECT pg_advisory_unlock(hashtext(%s))", [prefix])
    return name


def _drop_older_templates(admin: psycopg.Connection, prefix: str, keep: str) -> None:
    older = admin.execute(
        "SELECT datname FROM pg_database WHERE starts_with(datname, %s) "
        "AND datname <> %s",
        [prefix, keep],
    ).fetchall()
    for (name,) in older:
        # One being copied right now, by a run on older migrations, stays.
        with contextlib.suppress(psycopg.errors.ObjectInUse):
            admin.execute(f"DROP DATABASE {connection.ops.quote_name(name)}")
