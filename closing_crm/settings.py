"""Settings for Closing CRM: one module, driven by environment variables.

Every value that differs between a laptop, CI and production is read from the
environment (see `.env.example`). The defaults give the embedded setup that
`make run` uses: SQLite, a filesystem Celery broker, console email and the
built-in e-signature provider.
"""

import os
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CLOSING_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# https://docs.djangoproject.com/en/5.2/ref/settings/#debug
DEBUG = env_bool("DEBUG", False)

# https://docs.djangoproject.com/en/5.2/ref/settings/#secret-key
# A development key is only acceptable with DEBUG on (make run) or under pytest.
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if DEBUG or "pytest" in sys.modules:
        SECRET_KEY = "dev-only-insecure-key-never-use-in-production-0123456789"
    else:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# Public base URL used in emails (signing links, follow-ups). No trailing slash.
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "anymail",
    "deals",
    "contracts",
    "followups",
    "pipeline",
    "notifications",
    "rooms",
    "api",
]

MIDDLEWARE = [
    # First: /healthz answers on any host and over plain HTTP (container health checks).
    "closing_crm.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After sessions, before CommonMiddleware: Accept-Language / the language cookie pick the
    # language of anonymous pages (login, the buyer's signing page).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Times show in the signed-in user's zone (after authentication, which finds the user).
    "deals.middleware.UserTimeZoneMiddleware",
    # A signed-in user's own language (User.language) wins over the browser's.
    "deals.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "closing_crm.replica.PinToPrimaryMiddleware",
    # Must be last: it reads the authentication result of the request.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "closing_crm.urls"
# Django's widget templates, with <select> and <input> rendered in Python (the same HTML).
# https://docs.djangoproject.com/en/5.2/ref/settings/#form-renderer
FORM_RENDERER = "closing_crm.form_renderer.FormRenderer"
WSGI_APPLICATION = "closing_crm.wsgi.application"

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
                "closing_crm.context_processors.debug_pages",
            ],
        },
    },
]

# https://github.com/jazzband/dj-database-url
if not os.environ.get("DATABASE_URL"):
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # SQLite creates its file, not its folder
DATABASES = {
    "default": dj_database_url.parse(
        # The embedded default keeps its database with every other run-time file under var/.
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process, the worker and beat share one file: WAL lets readers run
    # beside a writer, IMMEDIATE transactions take the write lock up front so a
    # second writer waits (timeout) instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0

# Scale-out: a PostgreSQL streaming replica for analytics reads (closing_crm/replica.py).
# https://docs.djangoproject.com/en/5.2/topics/db/multi-db/
DATABASE_ROUTERS = ["closing_crm.replica.AnalyticsReplicaRouter"]
REPLICA_PIN_SECONDS = int(os.environ.get("REPLICA_PIN_SECONDS", "10"))

# --- Coaching ---------------------------------------------------------------------
# "What works" win rates: below this many decided deals a value says "too few deals to
# say" instead of a rate (its 95% Wilson interval would span most of 0-100%).
WHAT_WORKS_MIN_DEALS = int(os.environ.get("WHAT_WORKS_MIN_DEALS", "10"))
DATABASE_REPLICA_ALIAS = "replica" if os.environ.get("DATABASE_REPLICA_URL") else ""
if DATABASE_REPLICA_ALIAS:
    DATABASES["replica"] = dj_database_url.parse(
        os.environ["DATABASE_REPLICA_URL"],
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
    # Tests read the primary's test database through this alias (no second test database).
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "deals.User"

AUTHENTICATION_BACKENDS = [
    # django-axes first so that a locked-out login never reaches the model backend.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
# The languages shipped complete; the catalogue is locale/<lang>/LC_MESSAGES/django.po (the .mo
# files are compiled at install by `manage.py compile_translations`, not committed).
LANGUAGES = [("en", _("English")), ("de", _("German"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# https://whitenoise.readthedocs.io/en/stable/django.html#WHITENOISE_USE_FINDERS
WHITENOISE_USE_FINDERS = DEBUG

# Email: console in the embedded default; SMTP by EMAIL_URL-style settings in production.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Closing CRM <crm@example.com>")

# --- Email about deals: replies, threading, inbound -------------------------------
# Outgoing deal email carries Reply-To: replies+<signed deal token>@INBOUND_EMAIL_DOMAIN and a
# Message-ID on that domain, so a buyer's answer finds its deal. Empty: Reply-To stays the
# rep's own address (replies then reach the CRM only through In-Reply-To/References).
# `make run` (DEBUG) defaults to "localhost", which the SMTP receiver on 127.0.0.1:2525 takes.
INBOUND_EMAIL_DOMAIN = os.environ.get("INBOUND_EMAIL_DOMAIN", "localhost" if DEBUG else "")
# POST /inbound/email/ is off while this is empty; callers send it as X-Inbound-Secret.
INBOUND_EMAIL_SECRET = os.environ.get("INBOUND_EMAIL_SECRET", "")
# Bounds on one inbound message: bigger or more deeply built mail is refused, never parsed.
INBOUND_EMAIL_MAX_BYTES = int(os.environ.get("INBOUND_EMAIL_MAX_BYTES", str(10 * 1024 * 1024)))
INBOUND_EMAIL_MAX_PARTS = int(os.environ.get("INBOUND_EMAIL_MAX_PARTS", "100"))
# How much of a reply's text part is kept on the timeline and in the inbox.
INBOUND_EMAIL_MAX_TEXT = int(os.environ.get("INBOUND_EMAIL_MAX_TEXT", "20000"))
# django-anymail: ESP sending backends (EMAIL_BACKEND=anymail.backends.postmark.EmailBackend…)
# and the inbound/tracking webhooks under /inbound/anymail/<esp>/…, which answer 404 until
# ANYMAIL_WEBHOOK_SECRET ("user:password", HTTP basic auth) is set.
# https://anymail.dev/en/stable/installation/#configuring-tracking-and-inbound-webhooks
ANYMAIL = {
    "WEBHOOK_SECRET": os.environ.get("ANYMAIL_WEBHOOK_SECRET", ""),
    **{
        key.removeprefix("ANYMAIL_"): value
        for key, value in os.environ.items()
        if key.startswith("ANYMAIL_") and key != "ANYMAIL_WEBHOOK_SECRET"
    },
}

# Dashboards and coaching keep their rendered figures this long, per scope and filters
# (pipeline/snapshots.py); the page says when they were computed and offers a refresh, and
# a user's own change always shows at once. 0 computes them on every request.
DASHBOARD_CACHE_SECONDS = int(os.environ.get("DASHBOARD_CACHE_SECONDS", "60"))

CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
        }
        if os.environ.get("REDIS_URL")
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Celery -----------------------------------------------------------------
# https://docs.celeryq.dev/en/stable/userguide/configuration.html
# Redis when REDIS_URL is set (CI, production); otherwise kombu's filesystem
# transport, so `make run` needs nothing but Python.
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = REDIS_URL or "filesystem://localhost//"
if not REDIS_URL:
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        # Exchange tables (celery.pidbox…): kombu's default is ./control in the checkout.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    # kombu writes into these folders but does not create them: any command that queues a
    # task (seed_demo on a fresh checkout, say) would fail with FileNotFoundError.
    for _folder in ("out", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Beat's scheduler creates the schedule file's folder (a fresh checkout has no var/).
CELERY_BEAT_SCHEDULER = "closing_crm.celery:Scheduler"
CELERY_BEAT_SCHEDULE: dict = {}

# --- Follow-ups (reminder dispatcher) ---------------------------------------
# https://docs.celeryq.dev/en/stable/userguide/periodic-tasks.html
# Beat enqueues one dispatcher tick a minute (dropped if not started within it); the tick
# claims due reminders in batches and enqueues one send task per batch on the dispatch queue.
FOLLOWUPS_DISPATCH_QUEUE = os.environ.get("FOLLOWUPS_DISPATCH_QUEUE", "dispatch")
FOLLOWUPS_DISPATCH_INTERVAL = float(os.environ.get("FOLLOWUPS_DISPATCH_INTERVAL", "60"))
FOLLOWUPS_BATCH_SIZE = int(os.environ.get("FOLLOWUPS_BATCH_SIZE", "100"))
# Each sent email is committed on its own at once (one UPDATE setting its sent_at, before
# the next email goes out), so a worker killed mid-send sends at most one email a second
# time. The reminders are then marked sent with their timeline events in groups of
# FOLLOWUPS_RECORD_EVERY (one transaction each); a killed worker's emailed-but-unrecorded
# reminders are recorded, not resent, by the next claim. Call and meeting tasks are
# committed in groups of FOLLOWUPS_COMMIT_EVERY.
FOLLOWUPS_COMMIT_EVERY = int(os.environ.get("FOLLOWUPS_COMMIT_EVERY", "1"))
FOLLOWUPS_RECORD_EVERY = int(os.environ.get("FOLLOWUPS_RECORD_EVERY", "50"))
# A tick tops the batches in flight (claimed, queued or being sent) up to this many; each
# full batch then claims the next one when it is done. Keep it a little above the number
# of dispatch worker processes: more only makes claims wait in the queue (a claim that
# waited longer than the lease margin is renewed before it is sent: one more UPDATE).
FOLLOWUPS_MAX_BATCHES_PER_TICK = int(os.environ.get("FOLLOWUPS_MAX_BATCHES_PER_TICK", "8"))
# https://docs.celeryq.dev/en/stable/userguide/workers.html#time-limits
# A batch send task is stopped at its soft limit (what was sent is committed, the rest goes
# back to the queue) and killed at its hard limit.
FOLLOWUPS_TASK_TIME_LIMIT = int(os.environ.get("FOLLOWUPS_TASK_TIME_LIMIT", "20"))
FOLLOWUPS_TASK_SOFT_TIME_LIMIT = int(
    os.environ.get("FOLLOWUPS_TASK_SOFT_TIME_LIMIT", str(FOLLOWUPS_TASK_TIME_LIMIT * 3 // 4))
)
# A claimed reminder whose worker died is claimed again after this: the task's hard time
# limit plus a margin, so a live task never loses its claim. A killed worker's reminders go
# out again within the lease plus one dispatcher tick (25 s + 60 s by default).
FOLLOWUPS_LEASE_SECONDS = int(
    os.environ.get("FOLLOWUPS_LEASE_SECONDS", str(FOLLOWUPS_TASK_TIME_LIMIT + 5))
)
FOLLOWUPS_MAX_ATTEMPTS = int(os.environ.get("FOLLOWUPS_MAX_ATTEMPTS", "5"))
FOLLOWUPS_RETRY_BACKOFF_SECONDS = int(os.environ.get("FOLLOWUPS_RETRY_BACKOFF_SECONDS", "60"))
CELERY_BEAT_SCHEDULE["followups-dispatch"] = {
    "task": "followups.dispatch_due_reminders",
    "schedule": FOLLOWUPS_DISPATCH_INTERVAL,
    "options": {"queue": FOLLOWUPS_DISPATCH_QUEUE, "expires": FOLLOWUPS_DISPATCH_INTERVAL},
}
CELERY_TASK_ROUTES = {"followups.*": {"queue": FOLLOWUPS_DISPATCH_QUEUE}}

# --- Notifications ----------------------------------------------------------
# Daily digests go out at this local hour in each user's time zone; beat checks every
# NOTIFICATIONS_DIGEST_INTERVAL seconds who is due. Stalled deals are looked for hourly.
NOTIFICATIONS_DIGEST_HOUR = int(os.environ.get("NOTIFICATIONS_DIGEST_HOUR", "8"))
CELERY_BEAT_SCHEDULE["notifications-digest"] = {
    "task": "notifications.send_due_digests",
    "schedule": float(os.environ.get("NOTIFICATIONS_DIGEST_INTERVAL", "300")),
    "options": {"expires": 240},
}
CELERY_BEAT_SCHEDULE["notifications-stalled"] = {
    "task": "notifications.notify_stalled_deals",
    "schedule": float(os.environ.get("NOTIFICATIONS_STALLED_INTERVAL", "3600")),
    "options": {"expires": 1800},
}

# --- E-signature ------------------------------------------------------------
ESIGN_PROVIDER = os.environ.get("ESIGN_PROVIDER", "builtin")
# Built-in provider: a signing link works while its version is out for signature; once the
# version is signed or declined it shows that outcome this many days after it was issued.
CONTRACT_LINK_MAX_AGE_DAYS = int(os.environ.get("CONTRACT_LINK_MAX_AGE_DAYS", "14"))
# Signing pages: requests per IP and link within CONTRACT_LINK_THROTTLE_WINDOW seconds.
CONTRACT_LINK_THROTTLE = int(os.environ.get("CONTRACT_LINK_THROTTLE", "30"))
CONTRACT_LINK_THROTTLE_WINDOW = int(os.environ.get("CONTRACT_LINK_THROTTLE_WINDOW", "600"))
# Buyer rooms (rooms app): how long a room link lives, and what a buyer may upload.
ROOM_LINK_THROTTLE = int(os.environ.get("ROOM_LINK_THROTTLE", "60"))
ROOM_LINK_DAYS = int(os.environ.get("ROOM_LINK_DAYS", "60"))
ROOM_UPLOAD_MAX_BYTES = int(os.environ.get("ROOM_UPLOAD_MAX_BYTES", str(5 * 1024 * 1024)))
ROOM_UPLOAD_EXTENSIONS = {
    ".pdf": "application/pdf",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".txt": "text/plain",
    ".csv": "text/csv",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
# Built-in contracts left unsigned this many days after sending become "expired" (0: never).
CONTRACT_EXPIRE_AFTER_DAYS = int(os.environ.get("CONTRACT_EXPIRE_AFTER_DAYS", "0"))
# Provider calls that fail transiently are retried with exponential backoff, then marked failed.
CONTRACTS_MAX_RETRIES = int(os.environ.get("CONTRACTS_MAX_RETRIES", "5"))
CONTRACTS_RETRY_BACKOFF_SECONDS = int(os.environ.get("CONTRACTS_RETRY_BACKOFF_SECONDS", "30"))
# Completed contracts are sealed (PAdES) with this certificate and key (PEM). A new
# installation makes a self-signed pair with `manage.py signing_certificate_create`.
SIGNING_CERT_FILE = os.environ.get("SIGNING_CERT_FILE", str(VAR_DIR / "signing" / "seal-cert.pem"))
SIGNING_KEY_FILE = os.environ.get("SIGNING_KEY_FILE", str(VAR_DIR / "signing" / "seal-key.pem"))
SIGNING_KEY_PASSWORD = os.environ.get("SIGNING_KEY_PASSWORD", "")
# An RFC 3161 timestamp authority for the seal (empty: no timestamp is requested).
SIGNING_TSA_URL = os.environ.get("SIGNING_TSA_URL", "")
SIGNING_TSA_TIMEOUT = int(os.environ.get("SIGNING_TSA_TIMEOUT", "10"))
# The verify pages: largest PDF accepted, and uploads per IP per window on the public one.
VERIFY_MAX_BYTES = int(os.environ.get("VERIFY_MAX_BYTES", str(20 * 1024 * 1024)))
VERIFY_THROTTLE = int(os.environ.get("VERIFY_THROTTLE", "20"))
VERIFY_THROTTLE_WINDOW = int(os.environ.get("VERIFY_THROTTLE_WINDOW", "600"))
# DocuSign (docusign-esign SDK, JWT grant): docs/docusign.md explains every variable.
# REST calls go to the account's base URI from /oauth/userinfo; DOCUSIGN_BASE_URL is only a
# fallback for when user info names none (`manage.py docusign_check` reports a mismatch).
DOCUSIGN_BASE_URL = os.environ.get("DOCUSIGN_BASE_URL", "")
DOCUSIGN_OAUTH_HOST = os.environ.get("DOCUSIGN_OAUTH_HOST", "account-d.docusign.com")
DOCUSIGN_INTEGRATION_KEY = os.environ.get("DOCUSIGN_INTEGRATION_KEY", "")
DOCUSIGN_USER_ID = os.environ.get("DOCUSIGN_USER_ID", "")
DOCUSIGN_ACCOUNT_ID = os.environ.get("DOCUSIGN_ACCOUNT_ID", "")
DOCUSIGN_PRIVATE_KEY = os.environ.get("DOCUSIGN_PRIVATE_KEY", "")  # PEM text or a file path
DOCUSIGN_CONNECT_HMAC_KEYS = env_list("DOCUSIGN_CONNECT_HMAC_KEYS")
DOCUSIGN_CA_BUNDLE = os.environ.get("DOCUSIGN_CA_BUNDLE", "")
DOCUSIGN_WEBHOOK_URL = os.environ.get("DOCUSIGN_WEBHOOK_URL", "")
# A redirect URI registered on the integration key: where DocuSign returns after consent.
DOCUSIGN_REDIRECT_URI = os.environ.get("DOCUSIGN_REDIRECT_URI", "") or f"{SITE_URL}/"
# Connect deliveries (JSON, no documents) are a few KB: larger or deeper bodies are refused
# with a 400 before they are parsed.
DOCUSIGN_WEBHOOK_MAX_BYTES = int(os.environ.get("DOCUSIGN_WEBHOOK_MAX_BYTES", str(1024 * 1024)))
DOCUSIGN_WEBHOOK_MAX_DEPTH = int(os.environ.get("DOCUSIGN_WEBHOOK_MAX_DEPTH", "32"))
DOCUSIGN_CONNECT_TIMEOUT = float(os.environ.get("DOCUSIGN_CONNECT_TIMEOUT", "5"))
DOCUSIGN_READ_TIMEOUT = float(os.environ.get("DOCUSIGN_READ_TIMEOUT", "30"))
# Envelopes whose webhooks never came are reconciled with list_status_changes.
CELERY_BEAT_SCHEDULE["contracts-reconcile"] = {
    "task": "contracts.reconcile",
    "schedule": float(os.environ.get("CONTRACTS_RECONCILE_INTERVAL", "900")),
    "options": {"expires": 600},
}

# --- Product behaviour -----------------------------------------------------
DEMO_MODE = env_bool("DEMO_MODE", False)

# --- REST framework -------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON in, JSON out: the schema documents nothing else, and one body format keeps
    # what a generated client sends and what the API reads the same (api/schema.py).
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_SCHEMA_CLASS": "api.schema.ApiAutoSchema",
    "EXCEPTION_HANDLER": "api.exceptions.api_exception_handler",
    # https://www.django-rest-framework.org/api-guide/throttling/
    "DEFAULT_THROTTLE_CLASSES": [
        "api.throttles.ApiUserThrottle",
        "api.throttles.ApiAnonThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": os.environ.get("API_THROTTLE_USER", "600/minute"),
        "anon": os.environ.get("API_THROTTLE_ANON", "30/minute"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Closing CRM API",
    "VERSION": "1.0.0",
    # The schema and its docs page are public on purpose (README, "Security"): they describe
    # the same API every installation runs, hold no data, and every operation needs a token.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_PUBLIC": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "DealStateEnum": "deals.models.DealState",
        "ClosingTechniqueEnum": "deals.models.ClosingTechnique",
        "SignalKindEnum": "deals.models.BuyingSignal.Kind",
        "EventKindEnum": "deals.models.DealEvent.Kind",
        "BillingEnum": "deals.models.BillingFrequency",
        "PlanStepStatusEnum": "rooms.models.PlanStep.Status",
    },
}

# --- django-axes (login throttling) ---------------------------------------
# https://django-axes.readthedocs.io/en/latest/4_configuration.html
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

# --- Security (production) -------------------------------------------------
# https://docs.djangoproject.com/en/5.2/howto/deployment/checklist/
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"

# Content-Security-Policy (django-csp 4):
# https://django-csp.readthedocs.io/en/latest/configuration.html
# Scripts only from our own origin (htmx and app.js are static files; no inline script).
# Inline style *attributes* are allowed: templates and Swagger UI use them, and styles
# cannot run code. Images may be data: URIs (Swagger UI icons, the admin's).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'self'"],
    }
}

# --- Uploads --------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/ref/settings/#data-upload-max-memory-size
# Uploads above FILE_UPLOAD_MAX_MEMORY_SIZE go to a temporary file, never into memory;
# CSV imports are refused above IMPORT_MAX_BYTES before a byte of them is parsed.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
IMPORT_MAX_BYTES = int(os.environ.get("IMPORT_MAX_BYTES", str(5 * 1024 * 1024)))
IMPORT_MAX_ROWS = int(os.environ.get("IMPORT_MAX_ROWS", "20000"))
# CSV import jobs report progress through a cache the web process and the worker share:
# Redis when configured, otherwise files under var/ (the embedded setup runs on one machine).
IMPORT_PROGRESS_CACHE = "imports"
CACHES[IMPORT_PROGRESS_CACHE] = (
    {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    if REDIS_URL
    else {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(VAR_DIR / "cache" / "imports"),
    }
)
CELERY_IMPORTS = ["deals.imports"]
# Bulk actions on more than BULK_INLINE_MAX deals run as Celery jobs on this queue (the
# default queue every worker consumes; tests give their own worker its own queue).
BULK_JOBS_QUEUE = os.environ.get("BULK_JOBS_QUEUE", "celery")
BULK_INLINE_MAX = int(os.environ.get("BULK_INLINE_MAX", "50"))

# Expected 4xx (403 PermissionDenied, 400 BadRequest, SuspiciousOperation) are logged as one
# line without a traceback (closing_crm/logging.py): on the logger Django writes them to, and
# on the console handler for the django.security.* family. 5xx keep their traceback.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"expected_client_errors": {"()": "closing_crm.logging.ExpectedClientErrors"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["expected_client_errors"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.request": {"filters": ["expected_client_errors"]},
        "django.security": {"filters": ["expected_client_errors"]},
        "django.db.backends": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        "docusign_esign": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        "mail.log": {"level": "WARNING"},  # aiosmtpd logs every connection at INFO
    },
}

if "pytest" in sys.modules:
    # Tests only: a fast password hasher, and static files from the finders
    # (no collectstatic before each run). Nothing else about behaviour changes.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"
    WHITENOISE_USE_FINDERS = True
    WHITENOISE_AUTOREFRESH = True
