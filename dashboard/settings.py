"""Django settings for the Batch Dashboard.

Everything comes from the environment (12-factor); the defaults are safe for a local demo. This is
the only module that reads the environment, and the one place each default is written; the app reads
its own settings typed, through ``batches.conf.conf()``. README.md has a table of every variable.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent


def env_text(name: str, default: str = "") -> str:
    """The variable's value without surrounding white space; ``default`` when unset or blank."""
    return os.environ.get(name, "").strip() or default


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as err:
        raise ImproperlyConfigured(f"{name} must be a number of seconds, not {raw!r}.") from err


def env_networks(name: str, default: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    try:
        return [ipaddress.ip_network(cidr, strict=False) for cidr in env_list(name, default)]
    except ValueError as err:
        raise ImproperlyConfigured(f"{name} holds an invalid CIDR: {err}") from err


DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it (a long random string) or set DJANGO_DEBUG=1 "
            "for local development."
        )
    SECRET_KEY = "insecure-local-development-key-do-not-use-in-production-0123456789"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_tasks_db",
    "batches",
    "batches.jobs",
    "batches.costs",
]

# Triggered work (a webhook's refresh, notifications) runs through Django's Tasks framework; the
# database backend's `manage.py db_worker` runs it. A bigger deployment swaps the backend, not the code.
# "urgent" (batches.taskqueue.URGENT_QUEUE): a webhook's refresh and other work the worker takes first.
TASKS = {"default": {
    "BACKEND": os.environ.get("DASHBOARD_TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
    "QUEUES": ["default", "urgent"],
}}

MIDDLEWARE = [
    # First: every response (redirects and refusals too) carries X-Request-Id, every log line its context.
    "dashboard.observability.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Outside everything that can answer early (sign-in refusals, CSRF failures, error pages), so every
    # response carries the policy and its nonce is set before any template renders.
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # After WhiteNoise (static files are precompressed), before everything that writes the page.
    "dashboard.compression.PageGZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "batches.auth.DashboardIdentityMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "dashboard.urls"
WSGI_APPLICATION = "dashboard.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "batches.context_processors.dashboard",
            ],
        },
    },
    # Only the list rows' macros (batches/rows.py): a hundred rows render about three times faster.
    {"BACKEND": "django.template.backends.jinja2.Jinja2", "NAME": "rows", "DIRS": [BASE_DIR / "templates" / "jinja2"],
     "APP_DIRS": False, "OPTIONS": {"environment": "dashboard.jinja2.environment", "autoescape": True}},
]

DATABASES = {
    "default": dj_database_url.config(
        env="DATABASE_URL",
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=60,
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web workers, the task worker and the sync write to one SQLite file: write-ahead logging lets
    # readers go on during a write, IMMEDIATE transactions take the write lock up front (no deadlock
    # when a reader upgrades), and writers wait for each other instead of failing with "locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {
    "default": (
        {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
        }
        if os.environ.get("REDIS_URL")
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "batches"}
    )
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("DASHBOARD_TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

# Serving under a path prefix behind the proxy (e.g. /batch-dashboard).
FORCE_SCRIPT_NAME = os.environ.get("DASHBOARD_PATH_PREFIX") or None
STATIC_URL = (FORCE_SCRIPT_NAME or "") + "/static/"
# Overridable so tests (and read-only deployments) can collect static files elsewhere.
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT") or BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
# Where the default (filesystem) storage keeps files: jobs' inputs and merged results (docs/jobs.md).
MEDIA_ROOT = os.environ.get("DASHBOARD_MEDIA_ROOT") or str(BASE_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Uploads larger than this go to a temporary file on disk, never into memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_HANDLERS = ["batches.uploads.CappedTemporaryFileUploadHandler"]

# -- Security headers (issue: hardened defaults) ---------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Strict"
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
if env_bool("DJANGO_SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS", "0") or 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
# The preload directive only matters once the registrable domain is submitted to the browsers' list;
# on a dashboard's own host name it is harmless, so production settings may turn it on (docs/deployment.md).
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)

# Strict CSP: nothing from outside the dashboard, no inline script or style without a nonce,
# no eval (htmx is configured with allowEval=false in base.html).
SECURE_CSP = {
    "default-src": [CSP.NONE], "script-src": [CSP.SELF, CSP.NONCE], "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"], "connect-src": [CSP.SELF], "font-src": [CSP.SELF], "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE], "base-uri": [CSP.NONE], "object-src": [CSP.NONE],
}

# -- The upstream (names as the official SDKs use them) --------------------------------------------
OPENAI_API_KEY = os.environ.get("OPENAI_API_KEY", "")
OPENAI_BASE_URL = (os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip("/")
OPENAI_ORG_ID = os.environ.get("OPENAI_ORG_ID", "")
OPENAI_PROJECT_ID = os.environ.get("OPENAI_PROJECT_ID", "")
OPENAI_TIMEOUT = env_float("OPENAI_TIMEOUT", 15.0)
OPENAI_CONNECT_TIMEOUT = env_float("OPENAI_CONNECT_TIMEOUT", 5.0)
OPENAI_WEBHOOK_SECRET = os.environ.get("OPENAI_WEBHOOK_SECRET", "")
# Several projects in one dashboard (batches/projects.py); without it the variables above are the
# one project "default", shown under this name.
DASHBOARD_PROJECTS_FILE = os.environ.get("DASHBOARD_PROJECTS_FILE", "")
DASHBOARD_DEFAULT_PROJECT_NAME = env_text("DASHBOARD_DEFAULT_PROJECT_NAME", "Default")


def _secret_from_env(name: str) -> str:
    """The value of a variable a projects file names (a project's key or webhook secret), read when
    the file is read. A function, not a copy of the environment, so no page or log can show it."""
    return os.environ.get(name, "").strip()


DASHBOARD_SECRET_FROM_ENV = _secret_from_env
# How often `manage.py sync_batches` passes over each project (seconds).
DASHBOARD_SYNC_SECONDS = env_float("DASHBOARD_SYNC_SECONDS", 30.0)
DASHBOARD_COSTS_SYNC_SECONDS = env_float("DASHBOARD_COSTS_SYNC_SECONDS", 3600.0)
# Per pass: at most this many backfill pages, refresh pages, and unfinished stragglers retrieved one by one.
DASHBOARD_SYNC_BACKFILL_PAGES = int(env_float("DASHBOARD_SYNC_BACKFILL_PAGES", 50))
DASHBOARD_SYNC_REFRESH_PAGES = int(env_float("DASHBOARD_SYNC_REFRESH_PAGES", 28))
DASHBOARD_SYNC_STRAGGLERS = int(env_float("DASHBOARD_SYNC_STRAGGLERS", 10))
DASHBOARD_SYNC_CALL_BUDGET = int(env_float("DASHBOARD_SYNC_CALL_BUDGET", 30))
# Set by `scripts/run` when it starts the built-in emulator: every page then says so.
DASHBOARD_EMULATOR = env_bool("DASHBOARD_EMULATOR", False)

# How often pages of unfinished batches poll for fresh state (seconds).
DASHBOARD_POLL_SECONDS = env_float("DASHBOARD_POLL_SECONDS", 5.0)
# Jobs (docs/jobs.md): seconds between scheduling passes, and the first wait after token_limit_exceeded.
DASHBOARD_JOBS_TICK_SECONDS = env_float("DASHBOARD_JOBS_TICK_SECONDS", DASHBOARD_SYNC_SECONDS)
DASHBOARD_JOBS_BACKOFF_SECONDS = env_float("DASHBOARD_JOBS_BACKOFF_SECONDS", 60.0)
# How long identical upstream reads are shared between viewers (seconds).
DASHBOARD_CACHE_SECONDS = env_float("DASHBOARD_CACHE_SECONDS", 2.0)
# Negotiated rates: JSON, or the path of a .json/.toml file (batches/oversight/pricing.py).
DASHBOARD_PRICE_OVERRIDES = os.environ.get("DASHBOARD_PRICE_OVERRIDES", "")

# -- Identity and roles (SSO). See README "Deployment". --------------------------------------------
_auth_explicit = os.environ.get("DASHBOARD_AUTH", "").strip().lower()
DASHBOARD_AUTH = _auth_explicit or ("none" if DEBUG else "proxy")
if DASHBOARD_AUTH not in {"proxy", "oidc", "none"}:
    raise ImproperlyConfigured("DASHBOARD_AUTH must be one of: proxy, oidc, none.")
DASHBOARD_AUTH_HEADER = os.environ.get("DASHBOARD_AUTH_HEADER", "X-Forwarded-Email")
DASHBOARD_GROUPS_HEADER = os.environ.get("DASHBOARD_GROUPS_HEADER", "X-Forwarded-Groups")
DASHBOARD_OPERATOR_GROUPS = env_list("DASHBOARD_OPERATOR_GROUPS")
DASHBOARD_TRUSTED_PROXIES = env_networks("DASHBOARD_TRUSTED_PROXIES", "127.0.0.1/32,::1/128")

# DASHBOARD_AUTH=none is only ever chosen implicitly in DEBUG; in production it must be written out
# (and `manage.py check --deploy` still warns about it, see batches/checks.py).
DASHBOARD_AUTH_EXPLICIT = bool(_auth_explicit)
if DASHBOARD_AUTH == "none" and not DEBUG and not DASHBOARD_AUTH_EXPLICIT:
    raise ImproperlyConfigured("DASHBOARD_AUTH=none (no sign-in) with DJANGO_DEBUG off must be set explicitly.")

AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.RemoteUserBackend"]
# Sessions are short: in proxy mode the header is checked on every request anyway; in OIDC mode this
# is how long a sign-in lasts before the provider is asked again.
SESSION_COOKIE_AGE = int(os.environ.get("DASHBOARD_SESSION_SECONDS", str(12 * 3600)) or 12 * 3600)
# htmx sends the token from the page (hx-headers on <body>); no script needs to read the cookie.
CSRF_COOKIE_HTTPONLY = True
CSRF_FAILURE_VIEW = "batches.views.errors.csrf_failure"
# Load balancers probe /healthz over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]

if DASHBOARD_AUTH == "oidc":
    # Log in directly against an OpenID Connect provider (mozilla-django-oidc; no discovery, so every
    # endpoint is configured). See docs/deployment.md.
    _oidc = {
        name: os.environ.get(name, "").strip()
        for name in ("OIDC_RP_CLIENT_ID", "OIDC_RP_CLIENT_SECRET", "OIDC_OP_AUTHORIZATION_ENDPOINT",
                     "OIDC_OP_TOKEN_ENDPOINT", "OIDC_OP_USER_ENDPOINT", "OIDC_OP_JWKS_ENDPOINT")
    }
    if _oidc_missing := [name for name, value in _oidc.items() if not value]:
        raise ImproperlyConfigured("DASHBOARD_AUTH=oidc needs these settings: " + ", ".join(_oidc_missing) + ".")
    OIDC_RP_CLIENT_ID = _oidc["OIDC_RP_CLIENT_ID"]
    OIDC_RP_CLIENT_SECRET = _oidc["OIDC_RP_CLIENT_SECRET"]
    OIDC_OP_AUTHORIZATION_ENDPOINT = _oidc["OIDC_OP_AUTHORIZATION_ENDPOINT"]
    OIDC_OP_TOKEN_ENDPOINT = _oidc["OIDC_OP_TOKEN_ENDPOINT"]
    OIDC_OP_USER_ENDPOINT = _oidc["OIDC_OP_USER_ENDPOINT"]
    OIDC_OP_JWKS_ENDPOINT = _oidc["OIDC_OP_JWKS_ENDPOINT"]
    OIDC_RP_SIGN_ALGO = env_text("OIDC_RP_SIGN_ALGO", "RS256")
    OIDC_RP_SCOPES = env_text("OIDC_RP_SCOPES", "openid email")
    OIDC_USE_PKCE = env_bool("OIDC_USE_PKCE", True)
    OIDC_VERIFY_SSL = env_bool("OIDC_VERIFY_SSL", True)
    OIDC_TIMEOUT = env_float("OIDC_TIMEOUT", 10.0)
    AUTHENTICATION_BACKENDS = ["batches.oidc.DashboardOIDCBackend"]
    LOGIN_URL = "oidc_authentication_init"
    LOGIN_REDIRECT_URL = "batches:list"
    LOGIN_REDIRECT_URL_FAILURE = "oidc_login_failed"
    LOGOUT_REDIRECT_URL = "oidc_signed_out"
# The claim that carries the person's groups (roles); read only in OIDC mode.
OIDC_GROUPS_CLAIM = env_text("OIDC_GROUPS_CLAIM", "groups")

# -- Operations: metrics, readiness, logs (docs/operations.md) -------------------------------------
# Peers allowed to read /metrics (CIDRs). Everyone else, and anything relayed for someone else
# (X-Forwarded-For / X-Real-IP naming an address outside the list), gets 404.
DASHBOARD_METRICS_ALLOWED = env_networks("DASHBOARD_METRICS_ALLOWED", "127.0.0.1/32,::1/128")
# prometheus-client's multiprocess mode: where this process writes its metric values (gunicorn's
# dashboard/gunicorn_conf.py makes a fresh one per start when unset). Unset elsewhere: single process.
PROMETHEUS_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
if PROMETHEUS_MULTIPROC_DIR:
    os.makedirs(PROMETHEUS_MULTIPROC_DIR, exist_ok=True)
# Other processes' multiprocess directories merged into /metrics (the task worker's, the sync's).
DASHBOARD_METRICS_DIRS = env_list("DASHBOARD_METRICS_DIRS")
# /readyz: whether a task worker heartbeat and a fresh sync of every project are required.
DASHBOARD_READY_REQUIRE_WORKER = env_bool("DASHBOARD_READY_REQUIRE_WORKER", not DEBUG)
DASHBOARD_READY_REQUIRE_SYNC = env_bool("DASHBOARD_READY_REQUIRE_SYNC", not DEBUG)
# How often `manage.py run_worker` writes its heartbeat; /readyz fails after 4 missed intervals.
DASHBOARD_WORKER_HEARTBEAT_SECONDS = env_float("DASHBOARD_WORKER_HEARTBEAT_SECONDS", 15.0)
# A project's sync lags when its last successful pass is older than this (default 3 sync intervals).
DASHBOARD_READY_SYNC_LAG_SECONDS = env_float("DASHBOARD_READY_SYNC_LAG_SECONDS", 3 * DASHBOARD_SYNC_SECONDS)

DJANGO_LOG_FORMAT = env_text("DJANGO_LOG_FORMAT", "plain").lower()
if DJANGO_LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured("DJANGO_LOG_FORMAT must be plain or json.")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "dashboard.observability.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": DJANGO_LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}

# -- Notifications (docs/notifications.md) ---------------------------------------------------------
# The dashboard's public address, with any path prefix: links in emails and chat messages start here.
DASHBOARD_PUBLIC_URL = (os.environ.get("DASHBOARD_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/")
# Tries per notification (with backoff 30 s, 2 min, 8 min, ...) before it is marked failed.
DASHBOARD_NOTIFY_MAX_ATTEMPTS = int(os.environ.get("DASHBOARD_NOTIFY_MAX_ATTEMPTS", "5") or 5)
# Mail: SMTP to EMAIL_HOST. Without EMAIL_HOST: printed to the console in DEBUG, and SMTP to
# localhost:25 (a local MTA, Django's classic default) otherwise, which keeps `check --deploy` clean.
# The variables keep their familiar EMAIL_* names but configure Django 6.1's MAILERS (the EMAIL_*
# settings are deprecated there).
_email_host = os.environ.get("EMAIL_HOST", "").strip()
_email_port = int(os.environ.get("EMAIL_PORT", "").strip() or (587 if _email_host else 25))
MAILERS = {
    "default": (
        {"BACKEND": "django.core.mail.backends.console.EmailBackend"}
        if DEBUG and not _email_host
        else {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": _email_host or "localhost",
                "port": _email_port,
                "username": os.environ.get("EMAIL_HOST_USER", ""),
                "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
                "use_tls": env_bool("EMAIL_USE_TLS", _email_port == 587),
                "timeout": env_float("EMAIL_TIMEOUT", 10.0),
            },
        }
    )
}
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "batch-dashboard@localhost")

# -- Hardening (docs/security.md): where notification sends may go, hung upstreams, the task queue ---
# Strict mode: the only hosts webhook notifications may be sent to (e.g. hooks.slack.com; ".example.com"
# also admits its subdomains). Empty: any public host over https.
DASHBOARD_NOTIFY_ALLOWED_HOSTS = [h.lower() for h in env_list("DASHBOARD_NOTIFY_ALLOWED_HOSTS")]
# Receivers inside your own network (e.g. an on-premises Mattermost): these named hosts alone may be
# reached over http:// and at loopback, private or link-local addresses.
DASHBOARD_NOTIFY_INTERNAL_HOSTS = [h.lower().strip("[]") for h in env_list("DASHBOARD_NOTIFY_INTERNAL_HOSTS")]
# A webhook send's whole time: resolving, connecting, sending and reading the answer.
DASHBOARD_NOTIFY_SEND_SECONDS = env_float("DASHBOARD_NOTIFY_SEND_SECONDS", 5.0)
# A page view's upstream read, in all (the sync and the worker keep OPENAI_TIMEOUT).
DASHBOARD_PAGE_READ_SECONDS = env_float("DASHBOARD_PAGE_READ_SECONDS", 5.0)
# Timeouts in a row that open a project's breaker, and how long it stays open before one probe.
DASHBOARD_BREAKER_TIMEOUTS = int(env_float("DASHBOARD_BREAKER_TIMEOUTS", 2))
DASHBOARD_BREAKER_OPEN_SECONDS = env_float("DASHBOARD_BREAKER_OPEN_SECONDS", 30.0)
# Page views of one project that may wait on its upstream at once in one web process (keep it below
# gunicorn's --threads), and how long they may wait before more are turned away at once.
DASHBOARD_UPSTREAM_PAGE_SLOTS = int(env_float("DASHBOARD_UPSTREAM_PAGE_SLOTS", 2))
DASHBOARD_UPSTREAM_SLOW_SECONDS = env_float("DASHBOARD_UPSTREAM_SLOW_SECONDS", 2.0)
# /readyz fails when the oldest task waiting in the queue has waited longer than this.
DASHBOARD_READY_QUEUE_AGE_SECONDS = env_float("DASHBOARD_READY_QUEUE_AGE_SECONDS", 120.0)
# A task RUNNING longer than this is reported stuck (/metrics, /readyz).
DASHBOARD_TASK_STUCK_SECONDS = env_float("DASHBOARD_TASK_STUCK_SECONDS", 900.0)
