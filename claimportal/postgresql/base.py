"""Django's PostgreSQL backend, with a health check that does not wait on the
server.

With CONN_HEALTH_CHECKS, Django checks a kept connection before a request's
first query by sending ``SELECT 1``: a round trip on every request that reads
the database, and the costliest part of a short page on a loaded machine.
The server ends an idle connection only by telling it why and closing it (a
restart, ``pg_terminate_backend``, ``idle_session_timeout``), and on an idle
connection it sends nothing else, so there is something to read on its
socket exactly then. That costs one poll of the socket. After a failed query
Django still sends ``SELECT 1`` (``is_usable``), as it did.
"""

import select

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    # Django's own attributes, set in connect(); django-stubs leaves them out.
    health_check_enabled: bool
    health_check_done: bool

    def close_if_health_check_failed(self) -> None:
        if (
            self.pool
            or self.connection is None
            or not self.health_check_enabled
            or self.health_check_done
        ):
            return
        if self._ended_while_idle():
            self.close()
        self.health_check_done = True

    def _ended_while_idle(self) -> bool:
        if self.connection.closed or self.connection.broken:
            return True
        socket = select.poll()
        socket.register(self.connection.fileno(), select.POLLIN)
        return bool(socket.poll(0))
