#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "claimportal.settings.dev")
    from django.core.management import execute_from_command_line
    from django.db import OperationalError

    try:
        execute_from_command_line(sys.argv)
    except OperationalError as error:
        from claimportal.startup import missing_database_hint

        hint = missing_database_hint(error)
        if hint is None:
            raise
        sys.exit(hint)


if __name__ == "__main__":
    main()
