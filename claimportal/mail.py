"""A development mail backend: print to the console and keep a copy on disk."""

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.console import EmailBackend as ConsoleBackend
from django.core.mail.backends.filebased import EmailBackend as FileBackend
from django.core.mail.message import EmailMessage


class ConsoleAndFileBackend(BaseEmailBackend):
    """Verification codes show up in the run command's console, and stay in
    ``var/mail`` (or ``file_path``) for later."""

    def __init__(
        self, *, file_path: str | None = None, alias: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(alias=alias, **kwargs)
        self._backends = [
            ConsoleBackend(alias=alias, **kwargs),
            FileBackend(
                file_path=file_path or str(settings.VAR_DIR / "mail"),
                alias=alias,
                **kwargs,
            ),
        ]

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        sent = 0
        for backend in self._backends:
            sent = backend.send_messages(email_messages)
        return sent
