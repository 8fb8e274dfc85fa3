"""``manage.py edge``: HAProxy in front of the portal and the previews."""

import os
import subprocess

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.edge import config


class Command(BaseCommand):
    help = (
        "Run the edge (HAProxy): the portal to its gunicorn pools, preview hosts "
        "to their Workers. It replaces this process; SIGUSR2 reloads it."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--port",
            type=int,
            help="listen on 127.0.0.1:PORT (instead of CLAIMPORTAL_EDGE_BINDS)",
        )

    def handle(self, *args, port: int | None, **options) -> None:
        try:
            binary = config.haproxy_binary()
        except FileNotFoundError as missing:
            raise CommandError(str(missing)) from missing
        binds = [f"127.0.0.1:{port}"] if port else settings.CLAIMPORTAL_EDGE_BINDS
        paths = config.edge_paths()
        config.write(paths=paths, binds=binds)
        checked = subprocess.run(
            [binary, "-q", "-c", "-f", str(paths.config)], check=False
        )
        if checked.returncode:
            raise CommandError(f"HAProxy refused {paths.config}.")
        self.stdout.write(f"Edge on {', '.join(binds)} (HAProxy, {paths.config}).")
        self.stdout.flush()
        os.execv(  # noqa: S606
            binary,
            [
                binary,
                "-W",
                "-db",
                "-S",
                f"{paths.master},mode,600",
                "-f",
                str(paths.config),
            ],
        )
