"""Development: a newcomer's defaults (SQLite, file broker, console email)."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.boolean("DEBUG", True)
ACCOUNT_EMAIL_VERIFICATION = env.text("CLAIMPORTAL_EMAIL_VERIFICATION", "mandatory")
MAILERS = {
    "default": {
        "BACKEND": env.text("EMAIL_BACKEND", "claimportal.mail.ConsoleAndFileBackend")
    }
}
