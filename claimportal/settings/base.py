"""Settings shared by every environment. Values from outside come through env."""

from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from . import env

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env.text("CLAIMPORTAL_VAR_DIR", str(BASE_DIR / "var")))


def install_secret_key() -> str:
    """SECRET_KEY signs sessions, proof-of-work challenges and D1 links, and keys
    every HMAC we make: no install may share it. Without SECRET_KEY set, each
    install makes its own in var/secret_key on first start (dev and test; prod
    must be told)."""
    return env.text("SECRET_KEY") or env.install_secret(VAR_DIR / "secret_key")


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
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.socialaccount.providers.github",
    "allauth.socialaccount.providers.google",
    "allauth.mfa",
    "accounts",
]

MIDDLEWARE = [
    "accounts.http.edge_client_address",
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
                "accounts.context_processors.held_claim",
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


def database(url: str, *, conn_max_age: int) -> dj_database_url.DBConfig:
    """The database ``url`` names; PostgreSQL through claimportal.postgresql,
    whose check of a kept connection sends nothing to the server."""
    found = dj_database_url.parse(
        url, conn_max_age=conn_max_age, conn_health_checks=True
    )
    if found["ENGINE"] == "django.db.backends.postgresql":
        found["ENGINE"] = "claimportal.postgresql"
    return found


DATABASES = {
    "default": database(
        DATABASE_URL, conn_max_age=env.integer("DATABASE_CONN_MAX_AGE", 60)
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
# Sign-in without a password: a code sent by email, or a passkey (WebAuthn,
# which browsers allow on https and on localhost). A passkey can also create
# the account, once the address is confirmed by code.
ACCOUNT_LOGIN_BY_CODE_ENABLED = True
MFA_SUPPORTED_TYPES = ["webauthn"]
MFA_PASSKEY_LOGIN_ENABLED = True
MFA_PASSKEY_SIGNUP_ENABLED = ACCOUNT_EMAIL_VERIFICATION == "mandatory"
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = False

# One-tap sign-in through other identity providers, each on when its client
# is configured. The callback to register with the provider is
# PUBLIC_BASE_URL + /accounts/<provider>/login/callback/ (openid_connect:
# /accounts/oidc/<CLAIMPORTAL_OIDC_ID>/login/callback/).
SOCIALACCOUNT_PROVIDERS: dict[str, dict] = {}
if env.text("CLAIMPORTAL_OIDC_CLIENT_ID"):
    SOCIALACCOUNT_PROVIDERS["openid_connect"] = {
        "APPS": [
            {
                "provider_id": env.text("CLAIMPORTAL_OIDC_ID", "sso"),
                "name": env.text("CLAIMPORTAL_OIDC_NAME", "your organisation"),
                "client_id": env.required("CLAIMPORTAL_OIDC_CLIENT_ID"),
                "secret": env.text("CLAIMPORTAL_OIDC_CLIENT_SECRET", ""),
                "settings": {
                    "server_url": env.required("CLAIMPORTAL_OIDC_SERVER_URL"),
                    "oauth_pkce_enabled": True,
                },
            }
        ],
    }
for _provider in ("github", "google"):
    _client_id = env.text(f"CLAIMPORTAL_{_provider.upper()}_CLIENT_ID")
    if _client_id:
        SOCIALACCOUNT_PROVIDERS[_provider] = {
            "APPS": [
                {
                    "client_id": _client_id,
                    "secret": env.required(
                        f"CLAIMPORTAL_{_provider.upper()}_CLIENT_SECRET"
                    ),
                }
            ],
            "SCOPE": ["user:email"] if _provider == "github" else ["email"],
        }
PROVIDER_ORIGINS = {
    "github": "https://github.com",
    "google": "https://accounts.google.com",
}


def sign_in_form_action(providers: dict[str, dict]) -> list[str]:
    """CSP form-action: our own forms, and the identity providers our sign-in
    buttons post to (the browser checks where the post's redirect goes)."""
    origins = [PROVIDER_ORIGINS[name] for name in providers if name in PROVIDER_ORIGINS]
    for app in providers.get("openid_connect", {}).get("APPS", []):
        url = urlsplit(app["settings"]["server_url"])
        origins.append(f"{url.scheme}://{url.netloc}")
    return [CSP.SELF, *origins]


# An address the provider vouches for needs no code of ours; one it does not
# is confirmed by code like any other. An existing account with the same
# verified address is signed in, not duplicated.
SOCIALACCOUNT_EMAIL_VERIFICATION = ACCOUNT_EMAIL_VERIFICATION
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_QUERY_EMAIL = True
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_ADAPTER = "claimportal.socialaccount.SettingsOnlyAdapter"
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
    "form-action": sign_in_form_action(SOCIALACCOUNT_PROVIDERS),
    "frame-ancestors": [CSP.NONE],
}

# Our own knobs (CLAIMPORTAL_*).
# Demo mode: a 5-minute window, so a claim or a purge fits in a meeting
# (verification codes are printed to the console unless EMAIL_BACKEND is set).
CLAIMPORTAL_DEMO = env.boolean("CLAIMPORTAL_DEMO", False)
_WINDOW_MINUTES = 5 if CLAIMPORTAL_DEMO else 60
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
    "preview_runtime.services.lifecycle.remove_preview_data",
]
# Abuse reports one client may file per hour through the public form.
CLAIMPORTAL_REPORTS_PER_HOUR = env.integer("CLAIMPORTAL_REPORTS_PER_HOUR", 5)
CLAIMPORTAL_PREVIEW_DOMAIN = env.text("CLAIMPORTAL_PREVIEW_DOMAIN", "preview.localhost")
CLAIMPORTAL_PREVIEW_BASE_URL = env.text(
    "CLAIMPORTAL_PREVIEW_BASE_URL", "http://{host}:8000"
)
# The preview runtime (manage.py preview_runtime): one workerd per live Worker.
CLAIMPORTAL_PREVIEW_STATE_DIR = Path(
    env.text("CLAIMPORTAL_PREVIEW_STATE_DIR", str(VAR_DIR / "preview"))
)
# Each runtime has a name of its own (and a state folder of its own): a row
# records which runtime holds each account's Workers.
CLAIMPORTAL_PREVIEW_RUNTIME_NAME = env.text("CLAIMPORTAL_PREVIEW_RUNTIME_NAME", "main")
# A runtime that has not read the desired state for this long takes no new
# accounts (its own stay placed on it).
CLAIMPORTAL_PREVIEW_RUNTIME_LIVE_SECONDS = env.integer(
    "CLAIMPORTAL_PREVIEW_RUNTIME_LIVE_SECONDS", 30
)
# The edge (manage.py edge): HAProxy in front of the portal and the previews.
# Binds are HAProxy's, separated by ";" (":443 ssl crt /etc/claimportal/tls/
# alpn h2,http/1.1;:80").
CLAIMPORTAL_EDGE_BINDS = [
    bind.strip()
    for bind in (env.text("CLAIMPORTAL_EDGE_BINDS") or "127.0.0.1:8000").split(";")
    if bind.strip()
]
# gunicorn's pools: pages (and /healthz), and the client/v4 API apart, so slow
# API calls never make pages wait. "unix:/path" or "host:port".
CLAIMPORTAL_EDGE_PORTAL = env.text("CLAIMPORTAL_EDGE_PORTAL", "127.0.0.1:8001")
CLAIMPORTAL_EDGE_API = env.text("CLAIMPORTAL_EDGE_API", "")
CLAIMPORTAL_EDGE_DIR = Path(
    env.text("CLAIMPORTAL_EDGE_DIR", str(CLAIMPORTAL_PREVIEW_STATE_DIR / "edge"))
)
CLAIMPORTAL_EDGE_MAXCONN = env.integer("CLAIMPORTAL_EDGE_MAXCONN", 20000)
# One thread measured best on two cores shared with gunicorn and workerd.
CLAIMPORTAL_EDGE_THREADS = env.integer("CLAIMPORTAL_EDGE_THREADS", 1)
# Workers the edge can route to at once: a backend each, twice the unclaimed
# pool by default so a freed one rests before another Worker takes it, plus
# room for claimed accounts' Workers.
CLAIMPORTAL_EDGE_SLOTS = env.integer("CLAIMPORTAL_EDGE_SLOTS", 600)
# The runtimes the edge routes to (their names), each through its own host
# map and slots in CLAIMPORTAL_EDGE_DIR.
CLAIMPORTAL_EDGE_RUNTIMES = env.strings(
    "CLAIMPORTAL_EDGE_RUNTIMES", [CLAIMPORTAL_PREVIEW_RUNTIME_NAME]
)
CLAIMPORTAL_HAPROXY_BIN = env.text("CLAIMPORTAL_HAPROXY_BIN", "haproxy")
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
# Slots: unclaimed accounts share one pool, of which no one origin may hold
# more than a share; claimed accounts run on their owner's own quota.
CLAIMPORTAL_PREVIEW_UNCLAIMED_POOL = env.integer(
    "CLAIMPORTAL_PREVIEW_UNCLAIMED_POOL", 200
)
CLAIMPORTAL_PREVIEW_ORIGIN_SHARE_PERCENT = env.integer(
    "CLAIMPORTAL_PREVIEW_ORIGIN_SHARE_PERCENT", 10
)
CLAIMPORTAL_PREVIEW_MAX_PER_OWNER = env.integer("CLAIMPORTAL_PREVIEW_MAX_PER_OWNER", 50)
# A Worker that used no CPU this long stops; the next visit starts it again.
CLAIMPORTAL_PREVIEW_IDLE_SECONDS = env.integer("CLAIMPORTAL_PREVIEW_IDLE_SECONDS", 600)
CLAIMPORTAL_PREVIEW_RECONCILE_SECONDS = env.integer(
    "CLAIMPORTAL_PREVIEW_RECONCILE_SECONDS", 2
)
# Each Worker's cell (when sandboxed): what the kernel lets it use, whether or
# not a request is open. Pinned at its CPU quota this long, it is stopped.
CLAIMPORTAL_PREVIEW_MEMORY_MB = env.integer("CLAIMPORTAL_PREVIEW_MEMORY_MB", 256)
CLAIMPORTAL_PREVIEW_CPU_PERCENT = env.integer("CLAIMPORTAL_PREVIEW_CPU_PERCENT", 50)
CLAIMPORTAL_PREVIEW_PIDS = env.integer("CLAIMPORTAL_PREVIEW_PIDS", 64)
# What a Worker may keep on the runtime's disk: its Durable Objects' data in
# all (past it, it is stopped), and any one file it writes.
CLAIMPORTAL_PREVIEW_STORAGE_MB = env.integer("CLAIMPORTAL_PREVIEW_STORAGE_MB", 128)
CLAIMPORTAL_PREVIEW_CPU_PINNED_SECONDS = env.integer(
    "CLAIMPORTAL_PREVIEW_CPU_PINNED_SECONDS", 60
)
# The UIDs (GID = UID) given to accounts' Workers, one each: "first-last".
CLAIMPORTAL_PREVIEW_UID_RANGE = env.text(
    "CLAIMPORTAL_PREVIEW_UID_RANGE", "200000-299999"
)
# The group that may connect to Workers' HTTP sockets besides the runtime
# (the edge's group, e.g. haproxy); empty: the runtime's own group.
CLAIMPORTAL_PREVIEW_EDGE_GROUP = env.text("CLAIMPORTAL_PREVIEW_EDGE_GROUP", "")
# Workers' binding calls (KV, D1, queues): Django's processes and threads that
# serve them, how many one account may have under way at once, and how long a
# call over that waits for its turn before the Worker gets a 429.
CLAIMPORTAL_PREVIEW_BINDING_PROCESSES = env.integer(
    "CLAIMPORTAL_PREVIEW_BINDING_PROCESSES", 2
)
CLAIMPORTAL_PREVIEW_BINDING_THREADS = env.integer(
    "CLAIMPORTAL_PREVIEW_BINDING_THREADS", 8
)
CLAIMPORTAL_PREVIEW_BINDING_CONCURRENCY = env.integer(
    "CLAIMPORTAL_PREVIEW_BINDING_CONCURRENCY", 2
)
CLAIMPORTAL_PREVIEW_BINDING_WAIT_SECONDS = env.integer(
    "CLAIMPORTAL_PREVIEW_BINDING_WAIT_SECONDS", 10
)
# Queue batches and crons run as Celery tasks: beat looks for due batches this
# often, and one account has at most this many batches and crons under way.
CLAIMPORTAL_PREVIEW_DELIVERY_POLL_SECONDS = env.integer(
    "CLAIMPORTAL_PREVIEW_DELIVERY_POLL_SECONDS", 1
)
CLAIMPORTAL_PREVIEW_TRIGGERS_PER_ACCOUNT = env.integer(
    "CLAIMPORTAL_PREVIEW_TRIGGERS_PER_ACCOUNT", 2
)
# Keyed hashing of client addresses: we keep where an account came from without
# keeping the address itself. Unset, SECRET_KEY is the key.
CLAIMPORTAL_ORIGIN_HASH_KEY = env.text("CLAIMPORTAL_ORIGIN_HASH_KEY")
# What one client holds, and so what blocking an account's origin refuses: its
# IPv4 address, and the /64 around an IPv6 address (one subscriber's share).
CLAIMPORTAL_BLOCK_PREFIX_V4 = env.integer("CLAIMPORTAL_BLOCK_PREFIX_V4", 32)
CLAIMPORTAL_BLOCK_PREFIX_V6 = env.integer("CLAIMPORTAL_BLOCK_PREFIX_V6", 64)
if not (
    8 <= CLAIMPORTAL_BLOCK_PREFIX_V4 <= 32 and 16 <= CLAIMPORTAL_BLOCK_PREFIX_V6 <= 128
):
    raise ImproperlyConfigured(
        "CLAIMPORTAL_BLOCK_PREFIX_V4 must be 8 to 32, and "
        "CLAIMPORTAL_BLOCK_PREFIX_V6 16 to 128."
    )
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
# One export's SQL text: a full database, its blobs written out in hex, fits.
CLAIMPORTAL_D1_MAX_EXPORT_BYTES = env.integer(
    "CLAIMPORTAL_D1_MAX_EXPORT_BYTES", 256 * 1024 * 1024
)
# D1 calls (queries, imports, exports) one account may have running at once,
# from the API and its Workers together; more get a 429 (code 7429).
CLAIMPORTAL_D1_MAX_CONCURRENT = env.integer("CLAIMPORTAL_D1_MAX_CONCURRENT", 4)
# How far back D1 time travel reaches (Cloudflare's 30 days); never less than an
# unclaimed account lives, so an agent can always undo its own writes.
CLAIMPORTAL_D1_TIME_TRAVEL = max(
    env.minutes("CLAIMPORTAL_D1_TIME_TRAVEL_MINUTES", 30 * 24 * 60),
    CLAIMPORTAL_CLAIM_WINDOW,
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
# Where the edge sends /tail/ (the tail server's WebSockets).
CLAIMPORTAL_EDGE_TAIL = env.text(
    "CLAIMPORTAL_EDGE_TAIL", f"127.0.0.1:{CLAIMPORTAL_TAIL_PORT}"
)
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
    "filters": {
        "expected_not_found": {"()": "claimportal.logfilters.ExpectedNotFound"}
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.text("LOG_LEVEL", "INFO")},
    "loggers": {
        # Request lines carry paths, and claim paths carry keys: never log them.
        "django.server": {"handlers": [], "propagate": False},
        "django.request": {
            "handlers": ["console"],
            "filters": ["expected_not_found"],
            "propagate": False,
        },
    },
}
