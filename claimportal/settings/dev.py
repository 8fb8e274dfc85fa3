"""Development: a newcomer's defaults (SQLite, file broker, console email)."""

from .base import *  # noqa: F403
from .base import VAR_DIR, env

DEBUG = env.boolean("DEBUG", True)
ACCOUNT_EMAIL_VERIFICATION = env.text("CLAIMPORTAL_EMAIL_VERIFICATION", "mandatory")
EMAIL_BACKEND = env.text("EMAIL_BACKEND", "claimportal.mail.ConsoleAndFileBackend")
EMAIL_FILE_PATH = str(VAR_DIR / "mail")
