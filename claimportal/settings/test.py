"""Tests: the real PostgreSQL and Redis of this machine, unless told otherwise."""

from pathlib import Path

from .base import *  # noqa: F403
from .base import (
    MIDDLEWARE,
    VAR_DIR,
    database,
    env,
    install_secret_key,
    redis_caches,
)

# The install's own key, as in development: every process of a test run (the
# test process, gunicorn, Celery, the preview runtime) reads the same file.
SECRET_KEY = install_secret_key()

DATABASES = {
    "default": database(
        env.text("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/claimportal"),
        conn_max_age=0,
    )
}
REDIS_URL = env.text("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env.text("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_BROKER_TRANSPORT_OPTIONS = {}
# Parallel test processes share Redis, not their databases: keys apart too.
CACHES = redis_caches(
    REDIS_URL,
    env.text("CLAIMPORTAL_CACHE_PREFIX", "claimportal-test")
    + env.text("PYTEST_XDIST_WORKER", ""),
)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
MEDIA_ROOT = Path(env.text("MEDIA_ROOT", str(VAR_DIR / "test-media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Cheap proof of work keeps the suite fast; the e2e tests use the real default.
CLAIMPORTAL_POW_K = env.integer("CLAIMPORTAL_POW_K", 8)
CLAIMPORTAL_POW_G = env.integer("CLAIMPORTAL_POW_G", 50)
# Static files come from the app folders through the test server, not from a
# collected STATIC_ROOT, so WhiteNoise has nothing to serve here.
MIDDLEWARE = [
    m for m in MIDDLEWARE if m != "whitenoise.middleware.WhiteNoiseMiddleware"
]
