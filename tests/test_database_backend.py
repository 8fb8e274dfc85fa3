"""A kept connection is checked before a request's first query without a
round trip (claimportal.postgresql), and one the server ended is replaced."""

import select
import time

import pytest
from django.db import connection, connections

pytestmark = pytest.mark.django_db


@pytest.fixture
def kept_connection():
    """A connection as a server thread keeps it between requests."""
    kept = connections.create_connection("default")
    kept.settings_dict = {
        **kept.settings_dict,
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }
    kept.connect()
    yield kept
    kept.close()


def _backend_pid(kept) -> int:
    with kept.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _next_request(kept) -> None:
    kept.close_if_unusable_or_obsolete()  # what request_started does


def test_a_connection_the_server_ended_is_replaced_before_the_next_query(
    kept_connection,
):
    ended = _backend_pid(kept_connection)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [ended])
    # The server's goodbye reaches the socket soon after it answered above.
    poll = select.poll()
    poll.register(kept_connection.connection.fileno(), select.POLLIN)
    deadline = time.monotonic() + 5
    while not poll.poll(10) and time.monotonic() < deadline:
        pass

    _next_request(kept_connection)

    assert _backend_pid(kept_connection) != ended


def test_a_live_connection_is_kept_across_requests(kept_connection):
    pid = _backend_pid(kept_connection)

    _next_request(kept_connection)

    assert _backend_pid(kept_connection) == pid
    assert kept_connection.health_check_done
