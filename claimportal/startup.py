"""What a first run needs to hear in one line instead of a traceback."""

import re

from django.conf import settings

_MISSING_DATABASE = re.compile(r'database "(?P<name>[^"]+)" does not exist')


def missing_database_hint(error: BaseException) -> str | None:
    """The one line that says how to create the database DATABASE_URL names,
    when ``error`` is PostgreSQL refusing a connection to a missing one."""
    match = _MISSING_DATABASE.search(str(error))
    if match is None:
        return None
    db = settings.DATABASES["default"]
    where = [
        f"-{flag} {value}"
        for flag, value in (
            ("h", db.get("HOST")),
            ("p", db.get("PORT")),
            ("U", db.get("USER")),
        )
        if value
    ]
    return (
        f'claimportal: the database "{match["name"]}" named by DATABASE_URL does '
        f"not exist; create it with: createdb {' '.join([*where, match['name']])}"
    )
