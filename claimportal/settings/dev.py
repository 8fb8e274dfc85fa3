"""Development: a newcomer's defaults (SQLite, file broker, console email)."""

from .base import *  # noqa: F403
from .base import env, install_secret_key

SECRET_KEY = install_secret_key()

DEBUG = env.boolean("DEBUG", True)
ACCOUNT_EMAIL_VERIFICATION = env.text("CLAIMPORTAL_EMAIL_VERIFICATION", "mandatory")
MAILERS = {
    "default": {
        "BACKEND": env.text("EMAIL_BACKEND", "claimportal.mail.ConsoleAndFileBackend")
    }
}
