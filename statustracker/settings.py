"""Settings, all read from the environment (see .env.example).

With no environment at all the service runs on embedded defaults: SQLite for the database and a
filesystem broker that several worker processes on one machine can share. Production points
DATABASE_URL at PostgreSQL and CELERY_BROKER_URL at Redis.
"""

from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("STATUSTRACKER_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="insecure-local-only-key-change-me" if DEBUG else "")
if not SECRET_KEY:
    # Without DEBUG a real key is required; the local run script writes one to .env.
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (see .env.example).")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- HTTPS (docs/production.md) -----------------------------------------------------------------
# Off by default, so that the local run (bin/run) works on plain HTTP; a production environment
# turns them on (the production block of .env.example) and `manage.py check --deploy` is clean.
# Redirect every plain-HTTP request to HTTPS (except /healthz, for load balancers probing over HTTP).
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# Send the session and CSRF cookies over HTTPS only; by default, whenever HTTPS is enforced.
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=SECURE_SSL_REDIRECT)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=SECURE_SSL_REDIRECT)
# Strict-Transport-Security: browsers use HTTPS only for this long (seconds; 0: no header).
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Behind a proxy that terminates TLS: the header it sets and the value meaning HTTPS, e.g.
# "HTTP_X_FORWARDED_PROTO,https". Set it only when the proxy always sets or overwrites the header.
_proxy_ssl_header = env.list("SECURE_PROXY_SSL_HEADER", default=[])
if _proxy_ssl_header and len(_proxy_ssl_header) != 2:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured('SECURE_PROXY_SSL_HEADER must be "HEADER,value", e.g. "HTTP_X_FORWARDED_PROTO,https".')
SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header) or None
# How many proxies in front of the service append to X-Forwarded-For; rate limits and login
# lockouts count the address the outermost of them saw (0: REMOTE_ADDR, no proxy trusted).
NUM_PROXIES = env.int("NUM_PROXIES", default=0)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_fsm",
    "axes",
    "api_access",
    "models_registry",
    "tracking",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "statustracker.middleware.NulInPathMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: turns a locked-out login into its 429.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "statustracker.urls"
WSGI_APPLICATION = "statustracker.wsgi.application"

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
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'statustracker.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, workers, beat) share the file: wait for locks instead of failing,
    # and take the write lock at BEGIN so that a reader never has to upgrade and deadlock.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Tests run real worker processes, which must see the test database: keep it in a file.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-statustracker.sqlite3")}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Parameters sent apart from the SQL: psycopg then need not quote every value of a bulk insert
    # in Python, which halves the CPU time of ingesting a batch.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("server_side_binding", True)
    # A host that loses power or its network sends nothing. Without keepalives the server would keep
    # its session for the system's TCP keepalive time (two hours), and with it the open transaction's
    # locks (instances being applied, inbox rows and a shard lease being stored): every process
    # needing those rows would wait as long (docs/scaling.md). Both ends probe a silent connection
    # after 10 s and drop it about 20 s after the last answer. Settings in DATABASE_URL win.
    for _option, _value in {
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 3,
        "keepalives_count": 3,
        "tcp_user_timeout": 20000,
        "options": "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=3 -c tcp_keepalives_count=3"
        " -c tcp_user_timeout=20000",
    }.items():
        DATABASES["default"]["OPTIONS"].setdefault(_option, _value)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Admin logins: django-axes counts failures per user name and client address in the database,
# which every process shares, and locks that pair out for a while (statustracker/login_lockout.py,
# docs/production.md); the admin lists the attempts (Axes > Access attempts).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = env.int("ADMIN_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("ADMIN_LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_CALLABLE = "statustracker.login_lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = "api_access.throttling.client_address"
# Failed attempts only; no row per successful login.
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env.bool("STATIC_MANIFEST", default=not DEBUG)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api_access.authentication.ApiTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only: the browsable docs are Swagger UI at /api/docs/.
    "DEFAULT_PARSER_CLASSES": ["api_access.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # drf-spectacular's, with the 400 body and the 429 every endpoint shares (api_access/schema.py).
    "DEFAULT_SCHEMA_CLASS": "api_access.schema.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "api_access.errors.exception_handler",
    # Per token, and per address without one; rates in STATUSTRACKER_RATE_LIMITS below.
    "DEFAULT_THROTTLE_CLASSES": ["api_access.throttling.TokenRateThrottle", "api_access.throttling.AnonRateThrottle"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "statustracker API",
    "DESCRIPTION": "Events in, progress of service requests out.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "EventResultStatusEnum": "tracking.arrival.apis.EVENT_RESULT_CHOICES",
        "MilestoneStatusEnum": "tracking.progress.apis.MILESTONE_STATUS_CHOICES",
        "InstanceStatusEnum": "tracking.progress.apis.INSTANCE_STATUS_CHOICES",
        "DeadLetterStatusEnum": "tracking.operations.apis.DEAD_LETTER_STATUS_CHOICES",
        "ReplayOutcomeEnum": "tracking.operations.apis.REPLAY_OUTCOME_CHOICES",
        "HealthStatusEnum": "statustracker.health.HEALTH_STATUS_CHOICES",
    },
}

# --- Celery -----------------------------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # A task received but not acknowledged (its worker died or dropped off the network) goes back
        # to the queue after this many seconds (docs/scaling.md); its events are swept long before.
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
        # Workers look for such tasks every 10 s; kombu's default looks only every tenth time.
        "unacked_restore_throttle": 1,
        # Without it, sending a task to a broker host that does not answer waits for the
        # system's TCP timeout (minutes), in the web request that stored the events.
        "socket_connect_timeout": env.float("CELERY_BROKER_CONNECT_TIMEOUT", default=1.0),
    }
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_DEFAULT_QUEUE", default="statustracker")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("CELERY_PREFETCH_MULTIPLIER", default=4)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=120)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=150)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django support closes the database connection before and after every task unless this
# is set, so each apply task paid for a new PostgreSQL backend (a quarter of the machine's CPU in
# bench/kinesis_bench.py). Workers keep their connection instead and drop it as Django does between
# requests, when it is broken or older than CONN_MAX_AGE (statustracker/celery.py).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
# Every task sent gets one immediate retry: it replaces a pooled connection that a broker restart has
# closed, and it costs nothing when the broker refuses connections. Celery's default (3 retries, up to
# a second apart) would hold every API request, apply and page view about a second while the broker
# is down, for nothing: what was not sent is found again by the sweeps (docs/architecture.md).
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
CELERY_BEAT_SCHEDULE = {
    "sweep-pending-events": {
        "task": "tracking.tasks.sweep_pending",
        "schedule": timedelta(seconds=env.int("SWEEP_INTERVAL_SECONDS", default=30)),
    },
    "expire-parked-events": {
        "task": "tracking.tasks.expire_parked",
        "schedule": timedelta(seconds=env.int("EXPIRE_INTERVAL_SECONDS", default=300)),
    },
    "sweep-notifications": {
        "task": "tracking.tasks.sweep_notifications",
        "schedule": timedelta(seconds=env.int("NOTIFICATION_SWEEP_INTERVAL_SECONDS", default=30)),
    },
    "notify-delays": {
        "task": "tracking.tasks.notify_delays",
        "schedule": timedelta(seconds=env.int("DELAY_CHECK_INTERVAL_SECONDS", default=60)),
    },
    # Every model's dashboard, worked out in the background for the page to read (docs/dashboard.md).
    "refresh-dashboards": {
        "task": "tracking.tasks.refresh_dashboards",
        "schedule": timedelta(seconds=env.int("DASHBOARD_REFRESH_INTERVAL_SECONDS", default=300)),
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Task modules outside autodiscover_tasks' list (statustracker/celery.py), imported by workers.
CELERY_IMPORTS = ["tracking.insights.tasks"]

# --- Shared cache: rate limits and the customer page's estimates --------------------------------
# Every web process must see the same counters (a limit counted per process would allow the rate
# once per process), so the cache is never per-process memory (docs/production.md):
# - CACHE_URL when set (redis://host:6379/1, dbcache://table, filecache:///path);
# - else the broker's Redis when the broker is Redis (same database; the keys have their own
#   prefix, and clearing the cache deletes only them: statustracker/cache.py);
# - else files under STATUSTRACKER_VAR_DIR/cache (made on first use), shared by the processes of
#   this one machine, as on the embedded defaults.
_broker_url = env.str("CELERY_BROKER_URL", default="")
_default_cache_url = (
    _broker_url if _broker_url.startswith(("redis://", "rediss://")) else f"filecache://{VAR_DIR / 'cache'}"
)
CACHES = {"default": env.cache_url_config(env.str("CACHE_URL", default="") or _default_cache_url)}
_cache = CACHES["default"]
if _cache["BACKEND"] in ("django.core.cache.backends.redis.RedisCache", "django_redis.cache.RedisCache"):
    _cache["BACKEND"] = "statustracker.cache.RedisCache"
    _cache.setdefault("KEY_PREFIX", "statustracker-cache")
    # A stalled Redis delays a request by about a second at most before the cache gives up.
    _cache["OPTIONS"] = {"socket_connect_timeout": 1, "socket_timeout": 1, **_cache.get("OPTIONS", {})}
elif _cache["BACKEND"] in (
    "django.core.cache.backends.filebased.FileBasedCache",
    "django.core.cache.backends.db.DatabaseCache",
):
    # One entry per client and window of each rate limit: room for many clients before culling.
    _cache["OPTIONS"] = {"MAX_ENTRIES": 5000, **_cache.get("OPTIONS", {})}

# Rate limits: "<requests>/<second|minute|hour|day>", empty for no limit; over it, 429 with
# Retry-After (api_access/throttling.py). API: per token, and per client address without one
# (the schema and docs). Customer page and its poll: per client address.
STATUSTRACKER_RATE_LIMITS = {
    "api-token": env.str("RATE_LIMIT_API_TOKEN", default="1200/minute"),
    "api-anon": env.str("RATE_LIMIT_API_ANON", default="60/minute"),
    "page": env.str("RATE_LIMIT_PAGE", default="120/minute"),
    "page-poll": env.str("RATE_LIMIT_PAGE_POLL", default="600/minute"),
}

# --- statustracker ----------------------------------------------------------------------------
# Extra modules that register transition handlers with @register_handler, imported at start-up.
STATUSTRACKER_HANDLER_MODULES = env.list("STATUSTRACKER_HANDLER_MODULES", default=[])
# How many instances one apply task covers. Fewer, larger statements: 500 applied 18 % more events
# per second than 200 on two cores, and 1,000 no more than 500 (bench/RESULTS.md).
STATUSTRACKER_TASK_BATCH_SIZE = env.int("STATUSTRACKER_TASK_BATCH_SIZE", default=500)
# A pending event older than this with no task applying it is enqueued again by the sweep.
STATUSTRACKER_SWEEP_AFTER_SECONDS = env.int("STATUSTRACKER_SWEEP_AFTER_SECONDS", default=60)
# An instance whose events fail to apply is tried alone this many times, the wait doubling from
# STATUSTRACKER_APPLY_RETRY_SECONDS (at most 5 minutes); then its offending event is marked failed.
STATUSTRACKER_APPLY_MAX_ATTEMPTS = env.int("STATUSTRACKER_APPLY_MAX_ATTEMPTS", default=5)
STATUSTRACKER_APPLY_RETRY_SECONDS = env.float("STATUSTRACKER_APPLY_RETRY_SECONDS", default=5.0)
STATUSTRACKER_MAX_EVENTS_PER_REQUEST = 500

# Webhooks (docs/notifications.md). A failed delivery is tried again after each of these waits in
# seconds (give or take a fifth): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h — more than a day in all.
STATUSTRACKER_WEBHOOK_RETRY_SCHEDULE = [
    float(seconds)
    for seconds in env.list(
        "STATUSTRACKER_WEBHOOK_RETRY_SCHEDULE", default=["5", "300", "1800", "7200", "18000", "36000", "36000"]
    )
]
# Endpoints on loopback, private, link-local or metadata addresses are refused unless this is set
# (tests and make run set it: their receivers are on 127.0.0.1).
WEBHOOK_ALLOW_PRIVATE_NETWORKS = env.bool("WEBHOOK_ALLOW_PRIVATE_NETWORKS", default=False)
WEBHOOK_CONNECT_TIMEOUT = env.float("WEBHOOK_CONNECT_TIMEOUT", default=3.0)
WEBHOOK_READ_TIMEOUT = env.float("WEBHOOK_READ_TIMEOUT", default=5.0)
# A webhook receiver inside the app, at /dev/webhooks/, for local runs (bin/run turns it on): it
# answers only when DEBUG is on as well (tracking/notify/dev_receiver.py).
STATUSTRACKER_DEV_RECEIVER = env.bool("STATUSTRACKER_DEV_RECEIVER", default=False)
# Who is mailed, once per delay check, the requests that became delayed (empty: nobody; the log says it).
STATUSTRACKER_DELAY_ALERT_EMAILS = env.list("STATUSTRACKER_DELAY_ALERT_EMAILS", default=[])
# Who is told when an endpoint is disabled: "Name <address>, …" (Django's mail_admins).
ADMINS = [
    (address.split("<")[0].strip() or address, address.split("<")[-1].rstrip(">").strip())
    for address in env.list("STATUSTRACKER_ADMINS", default=[])
]
# Largest API request body read; one event may be at most 1 MiB (docs/spec/events.md).
STATUSTRACKER_MAX_REQUEST_BYTES = env.int("STATUSTRACKER_MAX_REQUEST_BYTES", default=10 * 1024 * 1024)

# Customer page (docs/customer-page.md).
# Base of tracking links made outside a request (tasks, the shell); requests use their own host.
STATUSTRACKER_PUBLIC_URL = env.str("STATUSTRACKER_PUBLIC_URL", default="http://localhost:8000")
# Lifetime of a new tracking link in seconds; 0: links do not expire (they can still be revoked).
STATUSTRACKER_TRACKING_LINK_MAX_AGE = env.int("STATUSTRACKER_TRACKING_LINK_MAX_AGE", default=0)
# The page polls for changes this often (seconds) while the instance is not finished.
STATUSTRACKER_PAGE_POLL_SECONDS = env.int("STATUSTRACKER_PAGE_POLL_SECONDS", default=3)
# Completion estimate: computed from the latest N completed instances of the version, hidden
# below the minimum, and cached per version in the shared cache for this many seconds.
STATUSTRACKER_ETA_SAMPLE_SIZE = env.int("STATUSTRACKER_ETA_SAMPLE_SIZE", default=500)
STATUSTRACKER_ETA_MIN_COMPLETED = env.int("STATUSTRACKER_ETA_MIN_COMPLETED", default=20)
STATUSTRACKER_ETA_CACHE_SECONDS = env.int("STATUSTRACKER_ETA_CACHE_SECONDS", default=300)

# --- Customer email updates (docs/customer-email.md) ----------------------------------------------
# SMTP when EMAIL_HOST is set (production); otherwise one file per mail under
# STATUSTRACKER_VAR_DIR/mail, as on the embedded defaults. EMAIL_BACKEND overrides either.
EMAIL_HOST = env.str("EMAIL_HOST", default="")
EMAIL_PORT = env.int("EMAIL_PORT", default=587)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=bool(EMAIL_HOST))
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.filebased.EmailBackend",
)
EMAIL_FILE_PATH = str(VAR_DIR / "mail")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="statustracker <noreply@localhost>")
SERVER_EMAIL = env.str("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)
# At most one update mail per subscriber and request in this many seconds; changes within it are
# told together in the next mail.
STATUSTRACKER_EMAIL_INTERVAL_SECONDS = env.int("STATUSTRACKER_EMAIL_INTERVAL_SECONDS", default=900)
# The confirmation link works this long (seconds); an address never confirmed is deleted after it.
STATUSTRACKER_EMAIL_CONFIRM_MAX_AGE = env.int("STATUSTRACKER_EMAIL_CONFIRM_MAX_AGE", default=7 * 86400)
# Addresses are deleted this many days after their request ended (success or failure).
STATUSTRACKER_EMAIL_RETENTION_DAYS = env.int("STATUSTRACKER_EMAIL_RETENTION_DAYS", default=30)
# Requests for updates per client address (each may send a confirmation mail).
STATUSTRACKER_RATE_LIMITS["email-subscribe"] = env.str("RATE_LIMIT_EMAIL_SUBSCRIBE", default="10/hour")
CELERY_BEAT_SCHEDULE["sweep-customer-emails"] = {
    "task": "tracking.tasks.sweep_customer_emails",
    "schedule": timedelta(seconds=env.int("CUSTOMER_EMAIL_SWEEP_INTERVAL_SECONDS", default=60)),
}

# --- Kinesis consumer (docs/kinesis.md); each is the default of a consume_kinesis option -------
KINESIS_STREAM_NAME = env.str("KINESIS_STREAM_NAME", default="")
AWS_DEFAULT_REGION = env.str("AWS_DEFAULT_REGION", default="")
# A local Kinesis-compatible server such as kinesalite; empty: AWS.
KINESIS_ENDPOINT_URL = env.str("KINESIS_ENDPOINT_URL", default="")
# Where shards with no checkpoint start: TRIM_HORIZON, LATEST or AT_TIMESTAMP (with the time below).
KINESIS_INITIAL_POSITION = env.str("KINESIS_INITIAL_POSITION", default="TRIM_HORIZON")
KINESIS_START_TIMESTAMP = env.str("KINESIS_START_TIMESTAMP", default="")
# Unique per consumer process; empty: host:pid.
KINESIS_WORKER_ID = env.str("KINESIS_WORKER_ID", default="")
KINESIS_BATCH_SIZE = env.int("KINESIS_BATCH_SIZE", default=500)
KINESIS_LEASE_DURATION = env.float("KINESIS_LEASE_DURATION", default=10.0)
KINESIS_SHARD_SYNC_INTERVAL = env.float("KINESIS_SHARD_SYNC_INTERVAL", default=10.0)
KINESIS_IDLE_POLL_INTERVAL = env.float("KINESIS_IDLE_POLL_INTERVAL", default=1.0)
KINESIS_PROGRESS_INTERVAL = env.float("KINESIS_PROGRESS_INTERVAL", default=30.0)
KINESIS_METRICS_PORT = env.int("KINESIS_METRICS_PORT", default=0)
KINESIS_METRICS_ADDR = env.str("KINESIS_METRICS_ADDR", default="127.0.0.1")
KINESIS_LOG_FORMAT = env.str("KINESIS_LOG_FORMAT", default="json")
KINESIS_LOG_LEVEL = env.str("KINESIS_LOG_LEVEL", default="INFO")
# /metrics answers only requests with "Authorization: Bearer <METRICS_TOKEN>"; with no token set
# it answers everyone when DEBUG is on and no one (403) when it is off (docs/production.md).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # A Celery worker logs two INFO lines per task ("received", "succeeded in"), beat one per
        # task it sends: thousands a minute under load. Failures and retries are logged at WARNING
        # or above either way; CELERY_TASK_LOG_LEVEL=INFO shows every task again.
        **{
            name: {"level": env.str("CELERY_TASK_LOG_LEVEL", default="WARNING")}
            for name in ("celery.worker.strategy", "celery.app.trace", "celery.beat")
        },
    },
}
