"""Production: refuses to start without its secrets and services, or with
previews on the portal's own domain; passes check --deploy."""

from django.core.exceptions import ImproperlyConfigured

from . import env

# Checked before anything else: base.py falls back to SQLite, a file broker and
# other embedded defaults, which production must never run on by accident.
_MISSING = env.missing(
    "DATABASE_URL",
    ("CELERY_BROKER_URL", "REDIS_URL"),
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "PUBLIC_BASE_URL",
)
if _MISSING:
    raise ImproperlyConfigured(
        "Production settings need these in the environment: "
        + ", ".join(_MISSING)
        + ". (Development settings, claimportal.settings.dev, run without them.)"
    )

from .base import *  # noqa: E402, F403
from .base import CLAIMPORTAL_PREVIEW_DOMAIN  # noqa: E402
from .domains import portal_hosts, preview_domain_problem  # noqa: E402

DEBUG = False
SECRET_KEY = env.required("SECRET_KEY")
ALLOWED_HOSTS = env.strings("ALLOWED_HOSTS", [])
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must name the portal's host names.")
PUBLIC_BASE_URL = env.required("PUBLIC_BASE_URL").rstrip("/")
CSRF_TRUSTED_ORIGINS = env.strings("CSRF_TRUSTED_ORIGINS", [PUBLIC_BASE_URL])
_PREVIEW_PROBLEM = preview_domain_problem(
    preview_domain=CLAIMPORTAL_PREVIEW_DOMAIN,
    hosts=portal_hosts(public_base_url=PUBLIC_BASE_URL, allowed_hosts=ALLOWED_HOSTS),
)
if _PREVIEW_PROBLEM:
    raise ImproperlyConfigured(_PREVIEW_PROBLEM)

SECURE_SSL_REDIRECT = env.boolean("SECURE_SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.integer("SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
ACCOUNT_EMAIL_VERIFICATION = env.text("CLAIMPORTAL_EMAIL_VERIFICATION", "mandatory")
# Verification codes must reach people: SMTP unless EMAIL_BACKEND names another.
MAILERS = {
    "default": {
        "BACKEND": env.text(
            "EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend"
        )
    }
}
