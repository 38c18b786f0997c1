"""Settings shared by every environment; values come from the environment."""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("TRIBUTARY_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


SECRET_KEY = os.environ.get("SECRET_KEY", "")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    # The Django admin with Tributary's site: tenant admins and auditors use their tenant's
    # pages by their role (accounts/admin_site.py), not by is_staff.
    "accounts.apps.TributaryAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "simple_history",
    "django_celery_beat",
    "axes",
    "csp",
    "accounts",
    "flows",
    "scheduling",
    "operations",
    "config.monitoring",
    # `manage.py benchmark` and its no-op task (config/benchmark/).
    "config.benchmark",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "accounts.middleware.QueryTextMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "accounts.middleware.TenantMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into a 429.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "accounts.context_processors.tenancy",
            ],
        },
    },
]


# Every SQLite database gets these, the default file and a DATABASE_URL naming one alike.
SQLITE_OPTIONS = {
    # WAL lets the web server, worker and beat read while one of them writes;
    # IMMEDIATE transactions make writers queue on busy_timeout instead of failing.
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
}


def database_from_env() -> dict:
    """DATABASE_URL, or a SQLite file in the project folder (WAL) so nothing needs a server."""
    url = os.environ.get("DATABASE_URL", "")
    if url:
        db = dj_database_url.parse(
            url,
            conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
            # On in the web tier (config/wsgi.py): see there.
            conn_health_checks=os.environ.get("DB_CONN_HEALTH_CHECKS") == "1",
        )
        if db["ENGINE"] == "django.db.backends.sqlite3":
            db["OPTIONS"] = {**SQLITE_OPTIONS, **db.get("OPTIONS", {})}
        db.setdefault("TEST", {})
        if os.environ.get("TEST_DATABASE_NAME"):
            db["TEST"]["NAME"] = os.environ["TEST_DATABASE_NAME"]
        return db
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": VAR_DIR / "tributary.sqlite3",
        "OPTIONS": dict(SQLITE_OPTIONS),
        "TEST": {"NAME": VAR_DIR / "test.sqlite3"},
    }


DATABASES = {"default": database_from_env()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # django-axes first: it refuses sign-ins (page and token) after repeated failures.
    "axes.backends.AxesStandaloneBackend",
    # Django's ModelBackend, refusing service accounts (they use API tokens only).
    "accounts.backends.PeopleOnlyBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# API tokens: a token from POST /api/v1/auth/token/ (or issued without `expires_at`) lives
# API_TOKEN_LIFETIME_DAYS; none may be issued for longer than API_TOKEN_MAX_LIFETIME_DAYS.
API_TOKEN_LIFETIME = timedelta(days=float(os.environ.get("API_TOKEN_LIFETIME_DAYS", "30")))
API_TOKEN_MAX_LIFETIME = timedelta(days=float(os.environ.get("API_TOKEN_MAX_LIFETIME_DAYS", "365")))

AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = float(os.environ.get("AXES_COOLOFF_HOURS", "0.25"))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429

# Security headers on every response; pages load scripts only from our own static files.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        # Graph libraries and the admin set style attributes; scripts stay strict.
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# guardian: no anonymous user row; object grants live in direct-FK tables per model.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").exists() else []

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Token scopes and the auditors' read-only rule (accounts/api/permissions.py), every view.
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "accounts.api.permissions.ScopedAccess",
    ],
    "DEFAULT_PAGINATION_CLASS": "accounts.api.pagination.Pagination",
    # The API reads JSON; only the flow import also takes a file upload (its own parsers).
    # Form encodings would turn "" into "omitted" and a bare value into a field name.
    "DEFAULT_PARSER_CLASSES": ["accounts.api.parsers.JSONParser"],
    "PAGE_SIZE": 50,
    # Query parameters are read strictly, in one place (accounts/api/query.py): an empty,
    # repeated or ill-typed filter is a 400 naming it, never "no filter".
    "DEFAULT_FILTER_BACKENDS": [
        "accounts.api.query.StrictFilterBackend",
        "accounts.api.query.StrictSearchFilter",
        "accounts.api.query.StrictOrderingFilter",
    ],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "accounts.api.query.StrictContentNegotiation",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "accounts.api.exceptions.exception_handler",
    "DEFAULT_THROTTLE_RATES": {"token": os.environ.get("TOKEN_THROTTLE_RATE", "20/min")},
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Tributary API",
    "DESCRIPTION": "Build, test, publish and operate task flows.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Links from list/create responses to item routes (config/openapi.py), after the enums.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.openapi.add_links",
        "config.openapi.add_error_responses",
    ],
    # Several models have a "status" / "mode": name each choice set once.
    "ENUM_NAME_OVERRIDES": {
        "RunStatusEnum": "operations.choices.RunStatus",
        "NodeRunStatusEnum": "operations.choices.NodeStatus",
        "RunModeEnum": "operations.choices.RunMode",
        "RunCreateModeEnum": "operations.choices.USER_MODE_CHOICES",
    },
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "tokenAuth": {"type": "apiKey", "in": "header", "name": "Authorization"}
        }
    },
}

# Celery: a broker that needs no server by default (kombu's filesystem transport).
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("in", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "in"),
        "data_folder_out": str(BROKER_DIR / "in"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": 3600,
        # Redis: a worker asks its queues in the order of CELERY_TASK_QUEUES every time
        # (not round robin), so beat's wake-ups are taken before waiting node tasks.
        "queue_order_strategy": "priority",
    }
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 6 * 3600
CELERY_TASK_SOFT_TIME_LIMIT = 6 * 3600 - 60
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
# DatabaseScheduler tuned to send thousands of simultaneous entries quickly (scheduling/beat.py).
CELERY_BEAT_SCHEDULER = "scheduling.beat:TributaryScheduler"
CELERY_BEAT_SCHEDULE: dict = {
    # Fires due schedule fire times that beat skipped (e.g. a DST-shifted time), once each.
    "scheduling-sweep-due-schedules": {
        "task": "scheduling.tasks.sweep_due_schedules",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
    # Run engine watchdog: nodes whose worker died, parked retries that are due, lost messages.
    "operations-watchdog": {
        "task": "operations.watchdog",
        "schedule": 15.0,
        "options": {"expires": 14},
    },
    # Deadlines: a run still going at its deadline alerts within a second or two, and one
    # predicted to miss it alerts early. One indexed query when no deadline is open.
    "operations-deadline-sweep": {
        "task": "operations.deadline_sweep",
        "schedule": 1.0,
        "options": {"expires": 2},
    },
    # Idempotency-Keys of run requests are kept 24 hours.
    "operations-expire-run-request-keys": {
        "task": "operations.expire_run_request_keys",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
}
# Beat's wake-ups (and the sweep) travel in a queue of their own, which every worker also
# consumes, first: a busy minute's fire tasks must not wait behind the node tasks of the
# runs that the minute's first schedules just started.
SCHEDULING_QUEUE = "tributary.scheduling"
CELERY_TASK_DEFAULT_QUEUE = "celery"
# Webhook deliveries wait on a queue of their own, read after the others: a subscriber that
# is down or slow never holds back a node (run `-Q tributary.webhooks` workers to isolate them).
WEBHOOK_QUEUE = "tributary.webhooks"
CELERY_TASK_QUEUES = (Queue(SCHEDULING_QUEUE), Queue("celery"), Queue(WEBHOOK_QUEUE))
CELERY_TASK_ROUTES = {
    "scheduling.tasks.*": {"queue": SCHEDULING_QUEUE},
    # Timely like beat's wake-ups: a deadline alert must not wait behind node tasks.
    "operations.deadline_sweep": {"queue": SCHEDULING_QUEUE},
    "flows.deliver_webhook_event": {"queue": WEBHOOK_QUEUE},
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker that lost the broker keeps trying to reconnect however long the outage lasts
# (Celery gives up after 100 attempts, about 45 minutes, and exits).
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# A node running when the broker connection drops goes on and records its result in
# PostgreSQL; cancelling it (Celery 6's default) would only make it run a second time.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# Celery's Django fixup closes the database connection around every task unless this is
# set: a new PostgreSQL connection per node costs more than the node. Connections are
# recycled every 2 x this many tasks; the engine's tasks also drop broken/expired ones.
CELERY_DB_REUSE_MAX = int(os.environ.get("CELERY_DB_REUSE_MAX", "500"))

# Data source passwords are encrypted with MultiFernet: the first key encrypts, all decrypt.
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS")

# Outbound network policy of data sources and http nodes (flows/datasources/netpolicy.py): comma-separated
# hosts ("db.example.com", ".example.com" for a domain) or CIDR networks. Loopback, private and
# link-local addresses are refused unless allowed; deny wins over allow.
OUTBOUND_ALLOW = env_list("OUTBOUND_ALLOW")
OUTBOUND_DENY = env_list("OUTBOUND_DENY")
# The platform's own servers (its database server with every database on it, the broker,
# result backend and cache) are refused whatever OUTBOUND_ALLOW says. Name a server here as
# "host:port" (e.g. "127.0.0.1:5432") to let data sources reach its other databases anyway;
# the platform's own database stays refused.
OUTBOUND_ALLOW_PLATFORM_SERVERS = env_list("OUTBOUND_ALLOW_PLATFORM_SERVERS")
# Directories SQLite data sources may live in: each tenant gets its own folder
# <dir>/<tenant slug>/ in each, and can never open files elsewhere on the workers.
# Default: var/sqlite-datasources (the demo warehouse lives in its demo/ folder).
SQLITE_DATASOURCE_DIRS = env_list("SQLITE_DATASOURCE_DIRS") or [str(VAR_DIR / "sqlite-datasources")]

# /metrics (config/monitoring/): open to loopback clients unless METRICS_ALLOW_LOOPBACK=0;
# from anywhere else only with "Authorization: Bearer <METRICS_TOKEN>". Finished work is
# counted METRICS_SETTLE_SECONDS after it finished (room for late commits).
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
METRICS_ALLOW_LOOPBACK = env_bool("METRICS_ALLOW_LOOPBACK", True)
METRICS_SETTLE_SECONDS = float(os.environ.get("METRICS_SETTLE_SECONDS", "120"))

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "tributary@localhost")
# Where people open the console: alerts link to a run's page under it.
PUBLIC_URL = os.environ.get("PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
