"""Production: refuses to start without its secrets; passes check --deploy."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = env.required("SECRET_KEY")
ALLOWED_HOSTS = env.strings("ALLOWED_HOSTS", [])
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set in production.")
PUBLIC_BASE_URL = env.required("PUBLIC_BASE_URL").rstrip("/")
CSRF_TRUSTED_ORIGINS = env.strings("CSRF_TRUSTED_ORIGINS", [PUBLIC_BASE_URL])
CLAIMPORTAL_ORIGIN_HASH_KEY = env.text("CLAIMPORTAL_ORIGIN_HASH_KEY", SECRET_KEY)

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
