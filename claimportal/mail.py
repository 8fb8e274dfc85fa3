"""A development mail backend: print to the console and keep a copy on disk."""

from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.console import EmailBackend as ConsoleBackend
from django.core.mail.backends.filebased import EmailBackend as FileBackend


class ConsoleAndFileBackend(BaseEmailBackend):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._backends = [ConsoleBackend(*args, **kwargs), FileBackend(*args, **kwargs)]

    def send_messages(self, email_messages):
        sent = 0
        for backend in self._backends:
            sent = backend.send_messages(email_messages)
        return sent
