"""``manage.py tail_server``: the WebSocket server of ``wrangler tail``
(accounts/tail_server.py)."""

import asyncio

from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.tail_server import TailServer


class Command(BaseCommand):
    help = "Serve the WebSockets of wrangler tail (live logs of Workers)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=None)

    def handle(self, *args, host: str, port: int | None, **options) -> None:
        asyncio.run(
            TailServer().serve(
                host, settings.CLAIMPORTAL_TAIL_PORT if port is None else port
            )
        )
