"""Whether the parts claimportal depends on answer right now."""

from django.db import DatabaseError, connection

from claimportal.celery import app as celery_app


def check_database() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except DatabaseError:
        return False


def check_broker(*, timeout: int = 2) -> bool:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
            return True
    except Exception:  # any transport failure means "not reachable"
        return False
