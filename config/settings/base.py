"""Settings shared by every environment, driven by environment variables (see README)."""

from datetime import timedelta
from pathlib import Path

import environ
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("SECRET_KEY", default="insecure-dev-key-change-me-in-production-0123456789")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "core",
    "clients",
    "segments",
    "outreach",
    "newsletters",
    "campaigns",
    "analytics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "core.middleware.RefuseNulMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.middleware.RequestContextMiddleware",
    # Last, as django-axes documents: turns a locked-out login into the lockout page.
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
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.context_processors.navigation",
            ],
        },
    },
]

# DATABASE_URL unset -> embedded SQLite under var/; set -> PostgreSQL (postgres://user:pw@host/db).
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'crm.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].update(
        {"timeout": 30, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # No JIT on the product's connections (PostgreSQL): it bought nothing on any measured
    # statement and cost from 0.25 s a live count to minutes -- a journey's entry of 100,000
    # clients ran 2.9 s without it and over 6 minutes with it (bench/RESULTS.md "scenarios").
    # One place for every statement, instead of a SET LOCAL beside each big one.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "options", f"-c jit={'on' if env.bool('DB_JIT', default=False) else 'off'}")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "core.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Axes' backend first: it refuses a locked-out login before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
# The home page: an RM's day or a branch manager's team; the other roles go on to the clients.
LOGIN_REDIRECT_URL = "analytics:home"
LOGOUT_REDIRECT_URL = "login"

# Password guessing (django-axes, core/lockout.py): after LOGIN_LOCKOUT_ACCOUNT_FAILURES failed
# logins on one username, or LOGIN_LOCKOUT_ADDRESS_FAILURES from one address (an office behind
# one NAT address shares it), further logins there are refused for LOGIN_LOCKOUT_MINUTES after
# the last failure, or until an admin clears them. Refused tries do not extend the lockout.
LOGIN_LOCKOUT_ACCOUNT_FAILURES = env.int("LOGIN_LOCKOUT_ACCOUNT_FAILURES", default=5)
LOGIN_LOCKOUT_ADDRESS_FAILURES = env.int("LOGIN_LOCKOUT_ADDRESS_FAILURES", default=20)
LOGIN_LOCKOUT_MINUTES = env.int("LOGIN_LOCKOUT_MINUTES", default=15)
AXES_ENABLED = env.bool("LOGIN_LOCKOUT_ENABLED", default=True)
AXES_HANDLER = "core.lockout.LockoutHandler"
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_FAILURE_LIMIT = LOGIN_LOCKOUT_ACCOUNT_FAILURES
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_LOCKOUT_MINUTES)
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = False
AXES_DISABLE_ACCESS_LOG = True  # successful logins are in the audit log already
AXES_CLIENT_IP_CALLABLE = "core.lockout.client_address"
AXES_LOCKOUT_CALLABLE = "core.views.login_locked_out"
AXES_HTTP_RESPONSE_CODE = 429
# Proxies in front of Django that append to X-Forwarded-For (nginx, a load balancer): the
# client's address is the one the outermost of them saw. 0: REMOTE_ADDR (no proxy).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# Sessions end after 30 minutes without a request.
SESSION_COOKIE_AGE = env.int("SESSION_IDLE_SECONDS", default=30 * 60)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Content-Security-Policy on every response (django-csp): scripts and styles only from our own
# files, no inline script, no eval, no inline style. A view may narrow or widen it for itself
# (the email preview sends its own, stricter one; the Swagger UI adds its inline <style>).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    },
}

LANGUAGE_CODE = env("LANGUAGE_CODE", default="zh-hans")
LANGUAGES = [("zh-hans", _("简体中文")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")
MEDIA_URL = "/media/"
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 50 * 1024 * 1024
IMPORT_MAX_UPLOAD_BYTES = env.int("IMPORT_MAX_UPLOAD_BYTES", default=500 * 1024 * 1024)
# What one import may hold; a file past a limit is refused before it is parsed (clients.ingest).
IMPORT_MAX_ROWS = env.int("IMPORT_MAX_ROWS", default=2_000_000)
IMPORT_MAX_COLUMNS = env.int("IMPORT_MAX_COLUMNS", default=100)
# An .xlsx is a zip: the sum of its parts' unpacked sizes, and how many parts it may have.
IMPORT_XLSX_MAX_UNCOMPRESSED_BYTES = env.int("IMPORT_XLSX_MAX_UNCOMPRESSED_BYTES",
                                             default=200 * 1024 * 1024)
IMPORT_XLSX_MAX_ENTRIES = env.int("IMPORT_XLSX_MAX_ENTRIES", default=1000)

# Celery: CELERY_BROKER_URL unset -> tasks run eagerly in-process (make run on a bare machine).
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="")
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 6 * 3600}
# Every task has a soft time limit (SoftTimeLimitExceeded is raised in it: an import is marked
# failed) and a hard one (the worker kills the process). The tasks that legitimately run long
# (a scoring aggregate or chunk, a segment refresh, a newsletter dispatch) take the LONG pair.
# The sender writes the limits into each task message: give web, worker and beat the same
# values. Keep every hard limit below the visibility timeout above, or Redis hands a task that
# is still running to a second worker.
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=30 * 60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT",
                                 default=CELERY_TASK_SOFT_TIME_LIMIT + 2 * 60)
CELERY_LONG_TASK_SOFT_TIME_LIMIT = env.int("CELERY_LONG_TASK_SOFT_TIME_LIMIT", default=4 * 3600)
CELERY_LONG_TASK_TIME_LIMIT = env.int("CELERY_LONG_TASK_TIME_LIMIT",
                                      default=CELERY_LONG_TASK_SOFT_TIME_LIMIT + 5 * 60)
CELERY_TASK_ANNOTATIONS = {
    name: {"soft_time_limit": CELERY_LONG_TASK_SOFT_TIME_LIMIT,
           "time_limit": CELERY_LONG_TASK_TIME_LIMIT}
    for name in ("clients.scoring.tasks.scoring_aggregate_task",
                 "clients.scoring.tasks.scoring_chunk_task",
                 "segments.tasks.segment_refresh_many_task",
                 "segments.tasks.segment_refresh_task",
                 "newsletters.tasks.edition_dispatch_task")
}

# Cache (API throttling counts): CACHE_URL (redis://…), else a redis:// CELERY_BROKER_URL, is
# shared by every web process; with neither, each process counts in its own memory (limits then
# apply per process: with WEB_CONCURRENCY=3 a token gets up to 3x its rate).
CACHE_URL = env("CACHE_URL", default="") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "")
if CACHE_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": CACHE_URL, "KEY_PREFIX": "crm"}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Email: EMAIL_URL unset -> messages are written to var/outbox/; set (smtp://...) -> SMTP.
EMAIL_URL = env("EMAIL_URL", default="")
if EMAIL_URL:
    vars().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = "core.mail.EmlFileBackend"  # one .eml file per message
    EMAIL_FILE_PATH = env.path("EMAIL_FILE_PATH", default=VAR_DIR / "outbox")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="crm@example.com")
# The sender of campaign email steps (newsletters use each publication's own address).
CAMPAIGN_FROM_EMAIL = env("CAMPAIGN_FROM_EMAIL", default=DEFAULT_FROM_EMAIL)

# SMS and app push (outreach.channels.gateway): SMS_GATEWAY_URL unset -> one JSON file per
# message in var/outbox/; set -> HMAC-signed HTTP/JSON posts to the provider's gateway.
SMS_GATEWAY_URL = env("SMS_GATEWAY_URL", default="")
SMS_GATEWAY_KEY = env("SMS_GATEWAY_KEY", default="")
SMS_GATEWAY_TIMEOUT = env.float("SMS_GATEWAY_TIMEOUT", default=5.0)
SMS_GATEWAY_RETRIES = env.int("SMS_GATEWAY_RETRIES", default=3)
SMS_GATEWAY_BACKOFF = env.float("SMS_GATEWAY_BACKOFF", default=0.5)
SMS_GATEWAY_RATE = env.float("SMS_GATEWAY_RATE", default=0)
SMS_GATEWAY_CALLBACK_URL = env("SMS_GATEWAY_CALLBACK_URL", default="")
SMS_OUTBOX_DIR = env.path("SMS_OUTBOX_DIR", default=VAR_DIR / "outbox")
# Unset: the address `make run` serves on, so links follow `PORT=8101 make run`.
SITE_URL = env("SITE_URL", default="") or f"http://127.0.0.1:{env('PORT', default='8000')}"

# Newsletter dispatch: rate limits (shared across workers through Redis when the broker is
# redis://, per process otherwise), outbox chunk size, and retries of temporary SMTP failures.
# A scoring run with no progress for this long is resumed by Celery beat (every 10 minutes)
# and offered for resuming on the scoring page.
SCORING_STALE_SECONDS = env.int("SCORING_STALE_SECONDS", default=600)
# The window aggregate of a failed run is kept this long for a quick resume, then dropped.
SCORING_STAGING_KEEP_DAYS = env.int("SCORING_STAGING_KEEP_DAYS", default=7)
# A segment refresh with no heartbeat (written after every chunk) for this long belongs to a
# worker that died: the next start of that segment, or the nightly refresh, marks it failed.
SEGMENT_REFRESH_STALE_SECONDS = env.int("SEGMENT_REFRESH_STALE_SECONDS", default=900)
# Analytics rollups: clients per refresh chunk (one transaction each), when a running refresh
# without a heartbeat counts as dead, and what one contact costs per channel (CNY) in the
# campaign overview.
ANALYTICS_REFRESH_CHUNK = env.int("ANALYTICS_REFRESH_CHUNK", default=50000)
ANALYTICS_REFRESH_STALE_SECONDS = env.int("ANALYTICS_REFRESH_STALE_SECONDS", default=1800)
ANALYTICS_CONTACT_COST = {"email": 0.01, "sms": 0.05, "app_push": 0.0, "wechat": 1.0,
                          "phone": 5.0}
# Always-on campaigns (journeys) advance once a trading day from this hour (Asia/Shanghai),
# after the nightly scoring (02:00) and segment refresh (03:00) placed clients in scenarios.
JOURNEY_HOUR = env.int("JOURNEY_HOUR", default=9)
# Scenario thresholds (shared/DOMAIN.md "Scenarios"; segments.scenarios has the defaults):
# SCENARIO_ZOMBIE_MIN_DAYS, SCENARIO_DORMANT_DAYS, SCENARIO_DORMANT_MIN_AUM,
# SCENARIO_INFLOW_MIN, SCENARIO_INFLOW_PCT_AUM, SCENARIO_MATURITY_TRADING_DAYS,
# SCENARIO_RISK_EXPIRY_DAYS, SCENARIO_BIRTHDAY_DAYS, SCENARIO_ONBOARDING_DAYS.
for _name in ("ZOMBIE_MIN_DAYS", "DORMANT_DAYS", "DORMANT_MIN_AUM", "INFLOW_MIN",
              "INFLOW_PCT_AUM", "MATURITY_TRADING_DAYS", "RISK_EXPIRY_DAYS", "BIRTHDAY_DAYS",
              "ONBOARDING_DAYS"):
    if env(f"SCENARIO_{_name}", default=None) is not None:
        globals()[f"SCENARIO_{_name}"] = env.float(f"SCENARIO_{_name}")
NEWSLETTER_RATE_PER_SECOND = env.float("NEWSLETTER_RATE_PER_SECOND", default=20)
NEWSLETTER_RATE_PER_HOUR = env.int("NEWSLETTER_RATE_PER_HOUR", default=50_000)
NEWSLETTER_CHUNK_SIZE = env.int("NEWSLETTER_CHUNK_SIZE", default=200)
NEWSLETTER_MAX_ATTEMPTS = env.int("NEWSLETTER_MAX_ATTEMPTS", default=5)
NEWSLETTER_RETRY_BACKOFF_SECONDS = env.int("NEWSLETTER_RETRY_BACKOFF_SECONDS", default=60)
# A row claimed ("sending") for longer than this belongs to a dead worker and is handed back.
NEWSLETTER_STALE_CLAIM_SECONDS = env.int("NEWSLETTER_STALE_CLAIM_SECONDS", default=300)
# How many dispatch tasks one edition queues; idle workers beyond the first share the outbox.
NEWSLETTER_DISPATCH_TASKS = env.int("NEWSLETTER_DISPATCH_TASKS", default=4)
# "on" (default): a "sent" mark survives a crash of the database server too, so no client is
# mailed twice after one. "off" trades that for throughput (commits don't wait for the WAL flush;
# a server crash could forget the last ~0.6 s of marks and those messages would go again).
NEWSLETTER_DISPATCH_SYNCHRONOUS_COMMIT = env("NEWSLETTER_DISPATCH_SYNCHRONOUS_COMMIT",
                                             default="on")
# "Sent" marks on a second, asynchronous PostgreSQL connection while the next message renders
# (the next message's final dot still waits for the commit). Off: one connection, slower.
NEWSLETTER_DISPATCH_ASYNC_MARKS = env.bool("NEWSLETTER_DISPATCH_ASYNC_MARKS", default=True)
# Email replies: the IMAP mailbox of the publications' Reply-To address, read every minute by
# Celery beat; imap://user:password@host:143/INBOX or imaps://…:993/… (percent-encode @ / : in
# the user and password). Empty: replies are not fetched.
NEWSLETTER_REPLY_MAILBOX_URL = env("NEWSLETTER_REPLY_MAILBOX_URL", default="")
NEWSLETTER_REPLY_MAILBOX_STARTTLS = env.bool("NEWSLETTER_REPLY_MAILBOX_STARTTLS", default=False)
NEWSLETTER_REPLY_FETCH_BATCH = env.int("NEWSLETTER_REPLY_FETCH_BATCH", default=200)

# Domain settings (DOMAIN.md): service levels by AUM (CNY) and when a client counts as dormant.
SERVICE_LEVEL_AFFLUENT_MIN = env.int("SERVICE_LEVEL_AFFLUENT_MIN", default=500_000)
SERVICE_LEVEL_HNW_MIN = env.int("SERVICE_LEVEL_HNW_MIN", default=5_000_000)
DORMANT_AFTER_DAYS = env.int("DORMANT_AFTER_DAYS", default=180)
RISK_EXPIRY_WARNING_DAYS = env.int("RISK_EXPIRY_WARNING_DAYS", default=30)
# Campaign calls a day an RM is given at most (the rest are due on the next trading days).
RM_DAILY_CAPACITY = env.int("RM_DAILY_CAPACITY", default=40)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "core.api.KeysetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    # JSON only (docs/api.md); nesting, NUL and lone surrogates are refused with a 400.
    "DEFAULT_PARSER_CLASSES": ["core.parsers.SafeJSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # Requests per token (per user for sessions) and, before authentication, per address.
    # Counts live in the default cache (CACHES above): shared through Redis by every web
    # process when configured, per process otherwise. A refused request is a 429 with
    # Retry-After in the error envelope.
    "DEFAULT_THROTTLE_CLASSES": [
        "core.throttling.AnonRateThrottle",
        "core.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": env("API_THROTTLE_RATE", default="10000/hour"),
        "service": env("API_SERVICE_THROTTLE_RATE", default="100000/hour"),
        "anon": env("API_ANON_THROTTLE_RATE", default="60/minute"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Brokerage client-operations CRM API",
    "DESCRIPTION": "REST API v1 for internal systems: clients, products, holdings, transactions.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "core.api.document_bad_request"],
    # Clients (C1-C5) and products (R1-R5) both have a `risk_level`; name the enums apart.
    "ENUM_NAME_OVERRIDES": {
        "ClientRiskLevelEnum": "clients.models.ClientRiskLevel",
        "ProductRiskLevelEnum": "clients.models.ProductRiskLevel",
        "ScoringRunStatusEnum": "clients.scoring.models.ScoringRunStatus",
        "SegmentKindEnum": "segments.models.SegmentKind",
        # A segment refresh's status shares ScoringRunStatus's choices (and so its enum).
        "ClientStatusEnum": "clients.models.ClientStatus",
        # Newsletters: an edition's and a delivery's status, and a section's kind.
        "EditionStatusEnum": "newsletters.models.EditionStatus",
        "DeliveryStatusEnum": "newsletters.models.DeliveryStatus",
        "SectionKindEnum": "newsletters.models.SectionKind",
        # Outreach: a call's outcome (tasks, campaign outcomes) and a contact channel.
        "CallOutcomeEnum": "outreach.models.TaskOutcome",
        # A task's status (the task, and the follow-up task nested in a PATCH's answer).
        "TaskStatusEnum": "outreach.models.TaskStatus",
        "ContactChannelEnum": "outreach.models.Channel",
        "SalesChannelEnum": "clients.models.SalesChannel",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # scipy's optimiser inside Boschloo's exact test (campaign results) prints its bounds to
    # the root logger at INFO on every call: dropped by module name.
    "filters": {"no_scipy_optimiser": {"()": "django.utils.log.CallbackFilter",
                                       "callback": lambda record: record.module != "_shgo"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain",
                             "filters": ["no_scipy_optimiser"]}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    # axes logs every login at INFO; its WARNINGs (failures, lockouts) remain.
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
