"""Settings shared by every environment. Values from outside come through env."""

from pathlib import Path

import dj_database_url
from django.utils.csp import CSP

from . import env

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env.text("CLAIMPORTAL_VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = env.text("SECRET_KEY", "dev-only-insecure-key-change-me-0123456789abcdef")
DEBUG = env.boolean("DEBUG", False)
ALLOWED_HOSTS = env.strings("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

# The origin that claim URLs (and preview links) are built from.
PUBLIC_BASE_URL = env.text("PUBLIC_BASE_URL", "http://localhost:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = env.strings("CSRF_TRUSTED_ORIGINS", [PUBLIC_BASE_URL])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "allauth",
    "allauth.account",
    "accounts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "claimportal.urls"
WSGI_APPLICATION = "claimportal.wsgi.application"
ASGI_APPLICATION = "claimportal.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
            ],
        },
    },
]

DATABASE_URL = env.text("DATABASE_URL")
if DATABASE_URL is None:
    # The embedded default; its folder must exist before SQLite can open it,
    # and any manage.py command (even check) may be a fresh clone's first.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASE_URL = f"sqlite:///{VAR_DIR / 'claimportal.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env.integer("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
_VALIDATORS = "django.contrib.auth.password_validation."
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": _VALIDATORS + name}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env.text("MEDIA_ROOT", str(VAR_DIR / "media")))
# Stored bytes (D1 files, asset blobs) are never served directly: no route serves
# this prefix. It must still be a path, as Django's live test server wraps it.
MEDIA_URL = "/media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Redis serves as Celery's broker and as the shared cache (rate limits, PoW replay).
REDIS_URL = env.text("REDIS_URL")
CELERY_BROKER_URL = env.text("CELERY_BROKER_URL", REDIS_URL)
if CELERY_BROKER_URL is None:
    # The embedded default: a broker in plain files, good for one machine.
    CELERY_BROKER_URL = "filesystem://"
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_RESULT_BACKEND = env.text("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_DEFAULT_QUEUE = env.text("CLAIMPORTAL_CELERY_QUEUE", "celery")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True


def redis_caches(url: str, prefix: str) -> dict:
    """ "default" fails open while Redis is away (rate limits let requests
    through); "strict" raises, for what must be refused instead (single-use
    proof-of-work tokens)."""
    common = {"LOCATION": url, "KEY_PREFIX": prefix}
    return {
        "default": {"BACKEND": "claimportal.cache.FailOpenRedisCache", **common},
        "strict": {"BACKEND": "claimportal.cache.RedisCache", **common},
    }


if REDIS_URL:
    CACHES = redis_caches(
        REDIS_URL, env.text("CLAIMPORTAL_CACHE_PREFIX", "claimportal")
    )
else:
    _file_cache = {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(VAR_DIR / "cache"),
    }
    CACHES = {"default": _file_cache, "strict": _file_cache}

# django-allauth: email is the login; verification is by code so the person
# never leaves the claim page's tab.
SITE_ID = 1
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = env.text("CLAIMPORTAL_EMAIL_VERIFICATION", "mandatory")
ACCOUNT_EMAIL_VERIFICATION_BY_CODE_ENABLED = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_RATE_LIMITS = {"login_failed": "10/m/ip,5/5m/key", "signup": "20/m/ip"}
LOGIN_REDIRECT_URL = "accounts:mine"
LOGIN_URL = "account_login"

MAILERS = {
    "default": {
        "BACKEND": env.text(
            "EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend"
        )
    }
}
DEFAULT_FROM_EMAIL = env.text("DEFAULT_FROM_EMAIL", "claimportal <noreply@localhost>")

# No other site ever gets a Referer from us. Not "no-referrer": with it browsers
# send "Origin: null" on our own form posts, which Django's CSRF check refuses.
# Claim keys never stay in a page's address (the link redirects at once), so
# even our own Referers carry none.
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# Scripts only from our own static files (the admin's carry a nonce); inline
# style attributes stay allowed, as the admin's widgets use them.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# Our own knobs (CLAIMPORTAL_*).
# Demo mode: a 5-minute window, so a claim or a purge fits in a meeting
# (verification codes are printed to the console unless EMAIL_BACKEND is set).
CLAIMPORTAL_DEMO = env.boolean("CLAIMPORTAL_DEMO", False)
_WINDOW_MINUTES = 5 if CLAIMPORTAL_DEMO else 60
CLAIMPORTAL_ACCOUNT_LIFETIME = env.minutes(
    "CLAIMPORTAL_ACCOUNT_LIFETIME_MINUTES", _WINDOW_MINUTES
)
CLAIMPORTAL_CLAIM_WINDOW = env.minutes(
    "CLAIMPORTAL_CLAIM_WINDOW_MINUTES", _WINDOW_MINUTES
)
CLAIMPORTAL_MAX_EXTENSION = env.minutes("CLAIMPORTAL_MAX_EXTENSION_MINUTES", 24 * 60)
# Proof of work: k segments of g chained SHA-256 calls, about 1 s in wrangler
# (k*g near 576k). Many short segments keep the server's spot checks cheap:
# it recomputes SPOT_CHECKS*g hashes, 1/850 of the client's work, which leaves
# room under 1/500 for decoding and the call's own costs.
CLAIMPORTAL_POW_K = env.integer("CLAIMPORTAL_POW_K", 2560)
CLAIMPORTAL_POW_G = env.integer("CLAIMPORTAL_POW_G", 224)
CLAIMPORTAL_POW_CHALLENGE_TTL = env.minutes("CLAIMPORTAL_POW_CHALLENGE_TTL_MINUTES", 5)
CLAIMPORTAL_POW_SPOT_CHECKS = env.integer("CLAIMPORTAL_POW_SPOT_CHECKS", 3)
CLAIMPORTAL_RATE_LIMIT_PER_IP = env.integer("CLAIMPORTAL_RATE_LIMIT_PER_IP", 30)
CLAIMPORTAL_RATE_LIMIT_GLOBAL = env.integer("CLAIMPORTAL_RATE_LIMIT_GLOBAL", 600)
CLAIMPORTAL_RATE_LIMIT_WINDOW_SECONDS = env.integer(
    "CLAIMPORTAL_RATE_LIMIT_WINDOW_SECONDS", 60
)
# How many reverse proxies in front append to X-Forwarded-For; 0 trusts only
# REMOTE_ADDR (the client IP that rate limits and the blocklist go by).
CLAIMPORTAL_TRUSTED_PROXY_COUNT = env.integer("CLAIMPORTAL_TRUSTED_PROXY_COUNT", 0)
CLAIMPORTAL_PURGE_INTERVAL_SECONDS = env.integer(
    "CLAIMPORTAL_PURGE_INTERVAL_SECONDS", 30
)
# A batch is one transaction; bigger batches spread its fixed cost (bench_purge).
CLAIMPORTAL_PURGE_BATCH_SIZE = env.integer("CLAIMPORTAL_PURGE_BATCH_SIZE", 1000)
# Purged accounts keep a tombstone (row, revoked tokens, trail) this long, so an
# old token or claim link can still say "expired".
CLAIMPORTAL_TOMBSTONE_RETENTION = env.minutes(
    "CLAIMPORTAL_TOMBSTONE_RETENTION_MINUTES", 30 * 24 * 60
)
# Dotted paths of callables(account_ids=[...]) run after each purge batch, for
# data kept outside default storage.
CLAIMPORTAL_PURGE_CLEANERS: list[str] = [
    "accounts.services.previews.lifecycle.remove_preview_data",
]
# Abuse reports one client may file per hour through the public form.
CLAIMPORTAL_REPORTS_PER_HOUR = env.integer("CLAIMPORTAL_REPORTS_PER_HOUR", 5)
CLAIMPORTAL_PREVIEW_DOMAIN = env.text("CLAIMPORTAL_PREVIEW_DOMAIN", "preview.localhost")
CLAIMPORTAL_PREVIEW_BASE_URL = env.text(
    "CLAIMPORTAL_PREVIEW_BASE_URL", "http://{host}:8787"
)
# The preview runtime (manage.py preview_runtime): one workerd per live Worker.
CLAIMPORTAL_PREVIEW_PORT = env.integer("CLAIMPORTAL_PREVIEW_PORT", 8787)
CLAIMPORTAL_PREVIEW_STATE_DIR = Path(
    env.text("CLAIMPORTAL_PREVIEW_STATE_DIR", str(VAR_DIR / "preview"))
)
CLAIMPORTAL_WORKERD_BIN = env.text("CLAIMPORTAL_WORKERD_BIN", "")
CLAIMPORTAL_PREVIEW_SANDBOX = env.text("CLAIMPORTAL_PREVIEW_SANDBOX", "auto")
CLAIMPORTAL_PREVIEW_HEAP_MB = env.integer("CLAIMPORTAL_PREVIEW_HEAP_MB", 128)
CLAIMPORTAL_PREVIEW_STARTUP_TIMEOUT_SECONDS = env.integer(
    "CLAIMPORTAL_PREVIEW_STARTUP_TIMEOUT_SECONDS", 30
)
CLAIMPORTAL_PREVIEW_REQUEST_TIMEOUT_SECONDS = env.integer(
    "CLAIMPORTAL_PREVIEW_REQUEST_TIMEOUT_SECONDS", 15
)
CLAIMPORTAL_PREVIEW_MAX_PER_ACCOUNT = env.integer(
    "CLAIMPORTAL_PREVIEW_MAX_PER_ACCOUNT", 10
)
CLAIMPORTAL_PREVIEW_MAX_TOTAL = env.integer("CLAIMPORTAL_PREVIEW_MAX_TOTAL", 200)
CLAIMPORTAL_PREVIEW_IDLE_SECONDS = env.integer("CLAIMPORTAL_PREVIEW_IDLE_SECONDS", 0)
CLAIMPORTAL_PREVIEW_RECONCILE_SECONDS = env.integer(
    "CLAIMPORTAL_PREVIEW_RECONCILE_SECONDS", 2
)
# Keyed hashing of client addresses: we keep where an account came from without
# keeping the address itself.
CLAIMPORTAL_ORIGIN_HASH_KEY = env.text("CLAIMPORTAL_ORIGIN_HASH_KEY", SECRET_KEY)
CLAIMPORTAL_MAX_REQUEST_BYTES = env.integer(
    "CLAIMPORTAL_MAX_REQUEST_BYTES", 50 * 1024 * 1024
)
DATA_UPLOAD_MAX_MEMORY_SIZE = CLAIMPORTAL_MAX_REQUEST_BYTES
DATA_UPLOAD_MAX_NUMBER_FILES = 1000

# Data products of an account (KV, D1, Queues, Hyperdrive, certificates): how many
# of each, and how big. Cloudflare's free-plan figures unless a temporary account
# calls for less.
CLAIMPORTAL_KV_MAX_NAMESPACES = env.integer("CLAIMPORTAL_KV_MAX_NAMESPACES", 100)
CLAIMPORTAL_KV_MAX_VALUE_BYTES = env.integer(
    "CLAIMPORTAL_KV_MAX_VALUE_BYTES", 25 * 1024 * 1024
)
CLAIMPORTAL_D1_MAX_DATABASES = env.integer("CLAIMPORTAL_D1_MAX_DATABASES", 10)
CLAIMPORTAL_D1_MAX_DATABASE_BYTES = env.integer(
    "CLAIMPORTAL_D1_MAX_DATABASE_BYTES", 100 * 1024 * 1024
)
CLAIMPORTAL_D1_QUERY_SECONDS = env.integer("CLAIMPORTAL_D1_QUERY_SECONDS", 30)
CLAIMPORTAL_D1_MAX_RESULT_BYTES = env.integer(
    "CLAIMPORTAL_D1_MAX_RESULT_BYTES", 32 * 1024 * 1024
)
CLAIMPORTAL_QUEUES_MAX = env.integer("CLAIMPORTAL_QUEUES_MAX", 10)
CLAIMPORTAL_QUEUE_MAX_MESSAGE_BYTES = env.integer(
    "CLAIMPORTAL_QUEUE_MAX_MESSAGE_BYTES", 128 * 1024
)
CLAIMPORTAL_QUEUE_MAX_BACKLOG = env.integer("CLAIMPORTAL_QUEUE_MAX_BACKLOG", 10_000)
CLAIMPORTAL_HYPERDRIVE_MAX_CONFIGS = env.integer(
    "CLAIMPORTAL_HYPERDRIVE_MAX_CONFIGS", 10
)
CLAIMPORTAL_CERTIFICATES_MAX = env.integer("CLAIMPORTAL_CERTIFICATES_MAX", 20)
CLAIMPORTAL_CERTIFICATE_MAX_BYTES = env.integer(
    "CLAIMPORTAL_CERTIFICATE_MAX_BYTES", 64 * 1024
)

# Workers and static assets: how many, and how big (Cloudflare's figures).
CLAIMPORTAL_MAX_WORKERS = env.integer("CLAIMPORTAL_MAX_WORKERS", 100)
CLAIMPORTAL_MAX_SCRIPT_BYTES = env.integer(
    "CLAIMPORTAL_MAX_SCRIPT_BYTES", 10 * 1024 * 1024
)
CLAIMPORTAL_MAX_SECRET_BYTES = env.integer("CLAIMPORTAL_MAX_SECRET_BYTES", 5 * 1024)
CLAIMPORTAL_MAX_CRON_TRIGGERS = env.integer("CLAIMPORTAL_MAX_CRON_TRIGGERS", 5)
CLAIMPORTAL_MAX_SECRETS_PER_CHANGE = env.integer(
    "CLAIMPORTAL_MAX_SECRETS_PER_CHANGE", 100
)

# Live logs (wrangler tail): the WebSocket server (manage.py tail_server) on
# its own port, or behind the edge at the path prefix /tail/. Its public base
# URL; empty: ws:// on PUBLIC_BASE_URL's host at CLAIMPORTAL_TAIL_PORT.
CLAIMPORTAL_TAIL_PORT = env.integer("CLAIMPORTAL_TAIL_PORT", 8789)
CLAIMPORTAL_TAIL_BASE_URL = env.text("CLAIMPORTAL_TAIL_BASE_URL", "").rstrip("/")
CLAIMPORTAL_TAIL_TTL = env.minutes("CLAIMPORTAL_TAIL_TTL_MINUTES", 360)
CLAIMPORTAL_TAILS_PER_WORKER = env.integer("CLAIMPORTAL_TAILS_PER_WORKER", 10)
# Recent events kept per Worker (the claim page shows them; tails read them).
CLAIMPORTAL_EVENTS_KEPT = env.integer("CLAIMPORTAL_EVENTS_KEPT", 200)
CLAIMPORTAL_EVENT_MAX_BYTES = env.integer("CLAIMPORTAL_EVENT_MAX_BYTES", 32 * 1024)
# How much of each module's source the claim and account pages show.
CLAIMPORTAL_MODULE_SOURCE_BYTES = env.integer(
    "CLAIMPORTAL_MODULE_SOURCE_BYTES", 64 * 1024
)
CLAIMPORTAL_MAX_ASSET_FILES = env.integer("CLAIMPORTAL_MAX_ASSET_FILES", 20_000)
CLAIMPORTAL_MAX_ASSET_BYTES = env.integer(
    "CLAIMPORTAL_MAX_ASSET_BYTES", 25 * 1024 * 1024
)
CLAIMPORTAL_MAX_ASSETS_TOTAL_BYTES = env.integer(
    "CLAIMPORTAL_MAX_ASSETS_TOTAL_BYTES", 500 * 1024 * 1024
)
CLAIMPORTAL_ASSET_UPLOAD_TTL = env.minutes("CLAIMPORTAL_ASSET_UPLOAD_TTL_MINUTES", 60)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.text("LOG_LEVEL", "INFO")},
    "loggers": {
        # Request lines carry paths, and claim paths carry keys: never log them.
        "django.server": {"handlers": [], "propagate": False},
    },
}
