"""FinanceHub task platform settings.

Every value comes from the environment once, through the typed readers
in ``environment.py``, with a default that runs a fresh checkout with no server installed:
SQLite and kombu's filesystem transport under ``var/``. Setting ``DATABASE_URL``
and ``REDIS_URL`` switches the same code to PostgreSQL and Redis.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from .environment import (
    check_broker_url,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_str,
    parse_database_url,
    persistent_secret,
)
from .setting_checks import check_settings

BASE_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = BASE_DIR.parent
VAR_DIR = Path(os.environ.get("FINANCEHUB_VAR_DIR", REPO_DIR / "var"))


# --- Django ---------------------------------------------------------------------------------------
DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY") or persistent_secret(VAR_DIR, "django_secret_key")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "django_celery_results",
    "backend.core",
    "backend.market",
    "backend.tasks",
    "backend.monitoring",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Right after SecurityMiddleware: static files (the admin's CSS/JS) are answered before
    # sessions or auth run, by gunicorn itself, with no separate file server.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "backend.core.urls"
WSGI_APPLICATION = "backend.core.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'financehub.sqlite3'}")
DATABASES = {"default": parse_database_url(DATABASE_URL)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Worker, beat and web share one file: wait for the writer instead of failing at once,
    # and give tests a file (not :memory:) so a worker subprocess can see their rows.
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_financehub.sqlite3")}
else:
    # Workers keep connections across tasks (CELERY_DB_REUSE_MAX): check a reused one before its first query.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
# collectstatic writes here and WhiteNoise serves from here; the image collects into /app/static
# at build time (read-only to the app user), `make prepare` into var/static.
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(VAR_DIR / "static")))
# Compressed (gzip/brotli) copies next to each file; no manifest, so templates render in tests
# and before any collectstatic ran.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
# plain: one readable line per record; json: one JSON object per line with the task's fields
# (task_id, task_name, queue, symbols, provider) for log pipelines (backend/common/jsonlog.py).
LOG_FORMAT = env_str("LOG_FORMAT", "plain").lower()  # checked in setting_checks
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # SafeFormatter escapes control characters: a CR/LF in a symbol or a reply cannot forge a line.
    "formatters": {
        "plain": {
            "()": "backend.common.logsafe.SafeFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "json": {"()": "backend.common.jsonlog.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # Django's defaults give these their own unescaped handlers; route them through ours instead.
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # gunicorn's own lines (its settings file hands it this dict): escaped, redacted, LOG_FORMAT.
        "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

# --- Celery ---------------------------------------------------------------------------------------
# https://docs.celeryq.dev/en/stable/userguide/configuration.html
REDIS_URL = env_str("REDIS_URL")
# Shared by every process: dispatch locks live here. Redis when there is one, else a table.
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "financehub_cache"}}

BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = check_broker_url(
    "CELERY_BROKER_URL" if env_str("CELERY_BROKER_URL") else "REDIS_URL",
    env_str("CELERY_BROKER_URL") or REDIS_URL or "filesystem://localhost/",
)
USES_FILESYSTEM_BROKER = CELERY_BROKER_URL.startswith("filesystem://")

# Time limits, retry delays and the visibility timeout are one system. On Redis a message stays
# unacknowledged while a worker holds it: a retry waiting for its countdown, then running up to the
# hard limit. Held longer than visibility_timeout it is delivered again (a duplicate); a worker that
# dies holding it gives it back only after visibility_timeout plus one restore sweep. So: countdowns
# are capped (TASK_RETRY_BACKOFF_MAX), hard limit + that cap + a margin stay below the timeout
# (checked below; start-up refuses otherwise), and the timeout is short, so a killed worker's
# batches come back within about two minutes (docs/OPERATIONS.md, "What bounds recovery").
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 60)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 75)
TASK_RETRY_BACKOFF_MAX = env_int("TASK_RETRY_BACKOFF_MAX", 25)
TASK_RETRY_DELAY_FLOOR = env_int("TASK_RETRY_DELAY_FLOOR", 2)
# A provider's Retry-After is honoured up to this many seconds; past the cap above the retry hops
# (re-sent every TASK_RETRY_BACKOFF_MAX seconds) instead of waiting in one held message.
TASK_RETRY_AFTER_MAX = env_int("TASK_RETRY_AFTER_MAX", 600)
TASK_MAX_RETRIES = env_int("TASK_MAX_RETRIES", 5)
# Infrastructure faults (database, Redis, broker) are waited out this many times per task before
# the task fails; at the default cap that covers an outage of several minutes.
TASK_INFRA_MAX_RETRIES = env_int("TASK_INFRA_MAX_RETRIES", 20)
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 110)
# Seconds between the sweeps that give unacknowledged messages of dead workers back (kombu's default
# is one scan per 100 s; 5 s costs one small Redis query per worker).
CELERY_UNACKED_RESTORE_INTERVAL = env_int("CELERY_UNACKED_RESTORE_INTERVAL", 5)
# Headroom between a held message's longest life and the visibility timeout (clock skew, prefetch).
VISIBILITY_MARGIN_SECONDS = 5

if USES_FILESYSTEM_BROKER:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
        "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
        # The filesystem transport polls its folders; 0.2 s keeps control replies (ping,
        # Flower's inspect) well inside their timeouts at a negligible CPU cost.
        "polling_interval": env_float("CELERY_BROKER_POLLING_INTERVAL", 0.2),
    }
    for _folder in ("queue", "control", "processed"):
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
        "unacked_restore_interval": CELERY_UNACKED_RESTORE_INTERVAL,
        "unacked_restore_throttle": 1,
        # Serve the queues in the order the worker lists them (-Q high,medium,low),
        # not round-robin: high work is taken first whenever there is any.
        "queue_order_strategy": "priority",
        # One Redis list per priority 0-9 instead of kombu's four buckets (0-2, 3-5, 6-8, 9): routing's
        # steps (high 0/2/3, medium 4/5, low 8/9) then stay apart. The worker polls priority-major,
        # so with non-overlapping bands per queue this is one global order. See TASK_QUEUE_ARCHITECTURE.md.
        "priority_steps": list(range(10)),
    }
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
# django-celery-results' table; a database outage loses a state row, never the task (backend/tasks/results.py).
CELERY_RESULT_BACKEND = "backend.tasks.results:OutageTolerantDatabaseBackend"
CELERY_RESULT_EXTENDED = True
# None: results are deleted by maintenance.cleanup after RETENTION_TASK_RESULTS_DAYS, the one
# retention setting. Any value here would make beat add Celery's own daily celery.backend_cleanup
# row, a second cleanup of the same table on a second setting.
CELERY_RESULT_EXPIRES = None
# Batches a dispatcher sends (quotes.fetch, indicators.compute) store no SUCCESS row: the dispatch run
# counts their items and failures become dead letters. True stores one per batch again (debugging).
BATCH_TASK_RESULTS = env_bool("BATCH_TASK_RESULTS", False)

# JSON only: pickle would let anyone who can write to the broker run code in a worker.
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SEND_SENT_EVENT = True
# Task events leave a worker in batches, at most this many seconds late (backend/tasks/eventbatch.py).
CELERY_WORKER_CONSUMER = "backend.tasks.eventbatch:EventBatchingConsumer"
EVENT_FLUSH_INTERVAL = env_float("EVENT_FLUSH_INTERVAL", 0.05)
# No STARTED row: it is written before the task body, and with the database down that write turned
# every picked-up task into a failure without running it. Flower still shows started tasks (events).
CELERY_TASK_TRACK_STARTED = False
# Keep database connections across tasks: Celery's Django fixup otherwise closes them before and after
# every task (a PostgreSQL connect per task). backend/tasks/connections.py closes broken or old ones.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
DJANGO_CELERY_BEAT_TZ_AWARE = True

TASK_QUEUES = ("high", "medium", "low")
# x-max-priority makes RabbitMQ queues priority queues (Redis ignores it; its steps are above).
CELERY_TASK_QUEUE_MAX_PRIORITY = 9
CELERY_TASK_QUEUES = tuple(
    Queue(name, Exchange(name), routing_key=name, queue_arguments={"x-max-priority": CELERY_TASK_QUEUE_MAX_PRIORITY})
    for name in TASK_QUEUES
)
# A message sent without a priority sorts LAST, not first (backend/tasks/priority.py stamps it).
CELERY_TASK_DEFAULT_PRIORITY = 9
CELERY_TASK_DEFAULT_QUEUE = "medium"
CELERY_TASK_DEFAULT_EXCHANGE = "medium"
CELERY_TASK_DEFAULT_ROUTING_KEY = "medium"

# --- Market data ----------------------------------------------------------------------------------
# simulated: offline random walk (default); fake: real clients against the local fake server;
# live: real clients against the providers' own hosts (keys below).
MARKET_DATA_MODE = env_str("MARKET_DATA_MODE", "simulated")
QUOTE_BATCH_SIZE = env_int("QUOTE_BATCH_SIZE", 500)
# Quarantine a symbol after this many refreshes in a row in which every provider of its chain
# reported it unknown (quote fetches then skip it until an operator clears it); 0 = never.
QUARANTINE_AFTER_UNKNOWN = env_int("QUARANTINE_AFTER_UNKNOWN", 3)
INDICATOR_CHUNK_SIZE = env_int("INDICATOR_CHUNK_SIZE", 500)
INDICATOR_INTERVAL = env_str("INDICATOR_INTERVAL", "1d")
INDICATOR_HISTORY_BARS = env_int("INDICATOR_HISTORY_BARS", 250)
INDICATOR_PERIODS = {
    "sma": env_int("INDICATOR_SMA_PERIOD", 20),
    "ema": env_int("INDICATOR_EMA_PERIOD", 20),
    "rsi": env_int("INDICATOR_RSI_PERIOD", 14),
    "macd_fast": env_int("INDICATOR_MACD_FAST", 12),
    "macd_slow": env_int("INDICATOR_MACD_SLOW", 26),
    "macd_signal": env_int("INDICATOR_MACD_SIGNAL", 9),
    "bb_period": env_int("INDICATOR_BB_PERIOD", 20),
    "bb_stddev": env_float("INDICATOR_BB_STDDEV", 2.0),
}
NEWS_QUERY_SYMBOLS = env_int("NEWS_QUERY_SYMBOLS", 20)
# Retention, in days: task results, bars per interval, closed dead letters.
RETENTION_DAYS = {
    "task_results": env_int("RETENTION_TASK_RESULTS_DAYS", 7),
    "bars_5m": env_int("RETENTION_BARS_5M_DAYS", 7),
    "bars_1h": env_int("RETENTION_BARS_1H_DAYS", 90),
    "bars_1d": env_int("RETENTION_BARS_1D_DAYS", 3650),
    "dispatch_runs": env_int("RETENTION_DISPATCH_RUNS_DAYS", 14),
    "dead_letters": env_int("RETENTION_DEAD_LETTERS_DAYS", 30),
}
# A dispatch lock outlives the longest task: a dispatcher that dies never silences its schedule
# for longer than this, and a slow run is never overlapped by the next tick before it.
DISPATCH_LOCK_TTL = env_int("DISPATCH_LOCK_TTL", 300)
# --- Market conditions -> priority (backend/market/conditions.py, backend/tasks/routing.py) ----------
# Volatile when |24 h change| or the stdev of recent bar-to-bar returns (both in %) reach these.
VOLATILITY_THRESHOLDS = {
    "stock": (env_float("VOLATILITY_STOCK_CHANGE_PCT", 4.0), env_float("VOLATILITY_STOCK_REALISED_PCT", 2.5)),
    "crypto": (env_float("VOLATILITY_CRYPTO_CHANGE_PCT", 8.0), env_float("VOLATILITY_CRYPTO_REALISED_PCT", 5.0)),
    "default": (env_float("VOLATILITY_CHANGE_PCT", 5.0), env_float("VOLATILITY_REALISED_PCT", 3.0)),
}
VOLATILITY_INTERVAL = env_str("VOLATILITY_INTERVAL", "1d")
if VOLATILITY_INTERVAL not in ("5m", "1h", "1d"):
    raise ImproperlyConfigured(f"VOLATILITY_INTERVAL must be 5m, 1h or 1d, not {VOLATILITY_INTERVAL!r}")
VOLATILITY_BARS = env_int("VOLATILITY_BARS", 20)
VOLATILITY_MIN_BARS = env_int("VOLATILITY_MIN_BARS", 5)
# Stocks outside their session: one snapshot this long after the close, then this slow cadence;
# in pre-market, its own cadence. Closed days fetch nothing unless an operator runs the dispatch now.
CLOSE_SNAPSHOT_DELAY_SECONDS = env_int("CLOSE_SNAPSHOT_DELAY_SECONDS", 120)
AFTER_HOURS_QUOTE_SECONDS = env_int("AFTER_HOURS_QUOTE_SECONDS", 3600)
PRE_MARKET_QUOTE_SECONDS = env_int("PRE_MARKET_QUOTE_SECONDS", 900)
DEMO_ASSETS_FILE = Path(env_str("DEMO_ASSETS_FILE", str(BASE_DIR / "market" / "fixtures" / "demo_assets.json")))

# --- Providers (read when a worker builds its clients, never at import) ----------------------------
# Live hosts; each can be overridden (a proxy, a regional mirror). Binance's market-data-only mirror
# needs no key and is not geo-blocked like api.binance.com.
COINGECKO_PRO = env_bool("COINGECKO_PRO", False)
PROVIDER_BASE_URLS = {
    "yahoo": env_str("YAHOO_BASE_URL", "https://query1.finance.yahoo.com"),
    "binance": env_str("BINANCE_BASE_URL", "https://data-api.binance.vision"),
    "coingecko": env_str(
        "COINGECKO_BASE_URL",
        "https://pro-api.coingecko.com/api/v3" if COINGECKO_PRO else "https://api.coingecko.com/api/v3",
    ),
    "alphavantage": env_str("ALPHA_VANTAGE_BASE_URL", "https://www.alphavantage.co"),
    "coinmarketcap": env_str("COINMARKETCAP_BASE_URL", "https://pro-api.coinmarketcap.com"),
    "newsapi": env_str("NEWSAPI_BASE_URL", "https://newsapi.org"),
}
# Where Yahoo's session cookie comes from (yfinance's "basic" strategy).
YAHOO_COOKIE_URL = env_str("YAHOO_COOKIE_URL", "https://fc.yahoo.com")
# MARKET_DATA_MODE=fake: the fake server (python -m backend.fake_provider), one path per provider.
FAKE_PROVIDER_URL = env_str("FAKE_PROVIDER_URL", "http://127.0.0.1:8765")
# Keys: empty means "not configured"; in live mode a provider that needs one is left out of its chain.
ALPHA_VANTAGE_API_KEY = env_str("ALPHA_VANTAGE_API_KEY")
COINGECKO_API_KEY = env_str("COINGECKO_API_KEY")
COINMARKETCAP_API_KEY = env_str("COINMARKETCAP_API_KEY")
NEWSAPI_API_KEY = env_str("NEWSAPI_API_KEY")
# Request quotas shared by every worker (``limits`` strings, several joined by ";"; empty = no limit).
# Defaults sit under the free plans: CoinGecko demo 30/min, CMC basic 30/min, Alpha Vantage free
# 25/day, NewsAPI developer 100/day; Binance allows 6000 weight/min (a 20-symbol ticker costs 2).
PROVIDER_RATE_LIMITS = {
    "yahoo": env_str("YAHOO_RATE_LIMIT", "2/second"),
    "binance": env_str("BINANCE_RATE_LIMIT", "10/second"),
    "coingecko": env_str("COINGECKO_RATE_LIMIT", "30/minute"),
    "alphavantage": env_str("ALPHA_VANTAGE_RATE_LIMIT", "5/minute;25/day"),
    "coinmarketcap": env_str("COINMARKETCAP_RATE_LIMIT", "30/minute"),
    "newsapi": env_str("NEWSAPI_RATE_LIMIT", "100/day"),
}
# Longest a request waits for a quota slot before its provider is treated as unavailable (failover).
PROVIDER_RATE_LIMIT_MAX_WAIT = env_float("PROVIDER_RATE_LIMIT_MAX_WAIT", 10.0)
# Circuit breaker per provider: open after N consecutive transient failures, probe again after the cool-down.
BREAKER_FAILURE_THRESHOLD = env_int("BREAKER_FAILURE_THRESHOLD", 5)
BREAKER_RESET_SECONDS = env_float("BREAKER_RESET_SECONDS", 60.0)
# Per-request timeout of provider HTTP calls (seconds).
PROVIDER_HTTP_TIMEOUT = env_float("PROVIDER_HTTP_TIMEOUT", 10.0)
# Where limiter and breaker state is shared between workers: REDIS_URL unless set; empty = per process.
PROVIDER_STATE_REDIS_URL = env_str("PROVIDER_STATE_REDIS_URL", REDIS_URL)
# Prefix of those Redis keys, so two deployments (or test runs) on one Redis keep apart.
PROVIDER_STATE_PREFIX = env_str("PROVIDER_STATE_PREFIX", "financehub")

# --- Operator dashboard (/) ---------------------------------------------------------------------
# The page reloads itself this often (seconds); 0 turns the reload off.
DASHBOARD_REFRESH_SECONDS = env_int("DASHBOARD_REFRESH_SECONDS", 30)

# --- make run ---------------------------------------------------------------------------------------
WEB_PORT = env_int("WEB_PORT", 8000)
FLOWER_PORT = env_int("FLOWER_PORT", 5555)

# --- Dead letters ---------------------------------------------------------------------------------
# A message delivered more than this many times (its worker died on it each time) is
# dead-lettered and acknowledged instead of run again; 0 turns the cap off.
DEADLETTER_MAX_DELIVERIES = env_int("DEADLETTER_MAX_DELIVERIES", 3)
# Bulk replay sends at most this many tasks per second.
DEADLETTER_REPLAY_RATE = env_float("DEADLETTER_REPLAY_RATE", 5.0)
# Where a dead letter goes when the database is unreachable and Redis is not the broker
# (append-only JSON lines, flushed into the table once the database is back).
DEADLETTER_FALLBACK_FILE = Path(env_str("DEADLETTER_FALLBACK_FILE", str(VAR_DIR / "deadletters" / "fallback.jsonl")))
# Every log line of every process passes one redaction filter: API keys, passwords and
# tokens never reach a log (backend/common/redaction.py, fed this deployment's secret values).
LOGGING["filters"] = {
    "redact_secrets": {
        "()": "backend.common.redaction.RedactSecretsFilter",
        "secrets": "ext://backend.core.secrets.configured_secrets",
    },
    # The running task's id, name, queue and symbols, and the provider being called (backend/common/logcontext.py).
    "log_context": {"()": "backend.common.logcontext.LogContextFilter"},
}
LOGGING["handlers"]["console"]["filters"] = ["log_context", "redact_secrets"]
# Python warnings become log records (logger py.warnings), so a JSON stream has no bare stderr lines.
logging.captureWarnings(LOG_FORMAT == "json")


# --- Monitoring (docs/OPERATIONS.md, "Metrics", "Alerts", "Health endpoints") ---------------------------
# prometheus-client multiprocess mode: every worker, beat and web process writes its metric files here;
# /metrics merges them. Processes that should be scraped together must share this directory.
PROMETHEUS_MULTIPROC_DIR = Path(env_str("FINANCEHUB_METRICS_DIR", str(VAR_DIR / "prometheus")))
# Bearer token Prometheus sends to /metrics and to Flower's /metrics. Unset, one is generated once
# into var/metrics_token (point Prometheus's credentials_file at it); processes that do not share
# var/ (containers) must all be given the same METRICS_TOKEN.
METRICS_TOKEN = env_str("METRICS_TOKEN") or persistent_secret(VAR_DIR, "metrics_token")
# Each worker writes "I consume queue Q" every this many seconds; /health/ready counts a worker whose
# entry is older than three intervals as gone.
WORKER_LIVENESS_SECONDS = env_float("WORKER_LIVENESS_SECONDS", 10.0)
# Built-in notifier: where alerts go (a Slack-compatible incoming webhook; ADMINS by e-mail when
# ALERT_EMAIL is on), how often the conditions are checked and how often one firing alert repeats.
ALERT_WEBHOOK_URL = env_str("ALERT_WEBHOOK_URL")
ALERT_EMAIL = env_bool("ALERT_EMAIL", False)
ADMINS = [tuple(item.split(":", 1)) for item in env_list("DJANGO_ADMINS") if ":" in item]
ALERT_CHECK_SECONDS = env_float("ALERT_CHECK_SECONDS", 60.0)
ALERT_REPEAT_SECONDS = env_float("ALERT_REPEAT_SECONDS", 3600.0)
# Conditions: stale assets for this long, queue wait p95 over this budget (seconds) per queue.
ALERT_STALE_ASSETS_MIN = env_int("ALERT_STALE_ASSETS_MIN", 1)
QUEUE_WAIT_BUDGET_SECONDS = {
    "high": env_float("QUEUE_WAIT_BUDGET_HIGH_SECONDS", 30.0),
    "medium": env_float("QUEUE_WAIT_BUDGET_MEDIUM_SECONDS", 120.0),
    "low": env_float("QUEUE_WAIT_BUDGET_LOW_SECONDS", 600.0),
}
SERVER_EMAIL = env_str("SERVER_EMAIL", "financehub@localhost")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)


check_settings(globals())
