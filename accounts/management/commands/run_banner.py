"""The lines bin/run adds to its start banner: the mode it runs in and where
sign-in codes go, read from the settings in force."""

from django.conf import settings
from django.core.management.base import BaseCommand

CONSOLE_BACKENDS = {
    "claimportal.mail.ConsoleAndFileBackend": (
        "printed in this terminal (and kept in {var}/mail/)"
    ),
    "django.core.mail.backends.console.EmailBackend": "printed in this terminal",
}


class Command(BaseCommand):
    help = "Print the run mode and where verification codes go, for bin/run."

    def handle(self, *args, **options) -> None:
        window = int(settings.CLAIMPORTAL_CLAIM_WINDOW.total_seconds() // 60)
        if settings.CLAIMPORTAL_DEMO:
            mode = f"DEMO MODE: claims and accounts end after {window} minutes"
        else:
            mode = f"claim window {window} minutes"
        backend = settings.MAILERS["default"]["BACKEND"]
        var = settings.VAR_DIR
        if var.is_relative_to(settings.BASE_DIR):
            var = var.relative_to(settings.BASE_DIR)
        codes = CONSOLE_BACKENDS.get(backend, "sent by email ({backend})").format(
            var=var, backend=backend
        )
        self.stdout.write(f"    Mode:       {mode}")
        self.stdout.write(f"    Codes:      sign-up and sign-in codes are {codes}")
