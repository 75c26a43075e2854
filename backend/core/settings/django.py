"""Django's own settings: paths, apps, middleware, templates, database, cache, static files, logging.

Also the paths and service URLs the other sections build on: ``BASE_DIR``, ``VAR_DIR`` and ``REDIS_URL``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..environment import (
    env_bool,
    env_int,
    env_list,
    env_str,
    next_redis_database,
    parse_database_url,
    persistent_secret,
)

# backend/, the checkout, and the runtime directory (SQLite file, filesystem broker, metrics, secrets).
BASE_DIR = Path(__file__).resolve().parents[2]
REPO_DIR = BASE_DIR.parent
VAR_DIR = Path(os.environ.get("FINANCEHUB_VAR_DIR", REPO_DIR / "var"))

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY") or persistent_secret(VAR_DIR, "django_secret_key")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

# --- http on 127.0.0.1 (make run) or https behind a TLS-terminating proxy (docker compose) ---------
# make run serves plain http to this machine only. In production a proxy terminates TLS and tells the
# app so in X-Forwarded-Proto; DJANGO_BEHIND_TLS_PROXY=true (compose's default) then turns on what only
# https allows. The proxy must set that header itself, overwriting a client's: Django trusts it.
BEHIND_TLS_PROXY = env_bool("DJANGO_BEHIND_TLS_PROXY", False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    # Container healthchecks and Prometheus inside the cluster speak plain http to the container itself.
    SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
# HSTS (sent only on https answers) stays off until asked: once on, browsers refuse plain http to the
# host for that many seconds. Start small (3600), then a year (31536000) once every path is https.
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
# Off on purpose is not an oversight: Django's "HSTS not set" warning gives way to our own note
# (backend/core/deploy_checks.py), so `check --deploy --fail-level WARNING` judges everything else.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_SECONDS else ["security.W004"]

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
    "backend.deadletters",
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

ROOT_URLCONF = "backend.stack.urls"
WSGI_APPLICATION = "backend.stack.wsgi.application"
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

# The broker (celery section) and provider state (providers section) default to this Redis.
REDIS_URL = env_str("REDIS_URL")
# The cache is shared by every process (dispatch locks, worker liveness, alert state): Redis when there
# is one, else a table. Never the broker's database: cache.clear() is a FLUSHDB, which there would drop
# queued and unacknowledged tasks, quotas, breakers and pauses. So it takes the database after
# REDIS_URL's (/0 -> /1) unless CACHE_REDIS_URL names one; start-up refuses a shared one (setting_checks).
CACHE_REDIS_URL = env_str("CACHE_REDIS_URL") or (next_redis_database("REDIS_URL", REDIS_URL) if REDIS_URL else "")
if CACHE_REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "financehub_cache"}}

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
    # Every log line of every process passes one redaction filter: API keys, passwords and
    # tokens never reach a log (backend/common/redaction.py, fed this deployment's secret values).
    "filters": {
        "redact_secrets": {
            "()": "backend.common.redaction.RedactSecretsFilter",
            "secrets": "ext://backend.core.secrets.configured_secrets",
        },
        # The running task's id, name, queue and symbols, and the provider being called (backend/common/logcontext.py).
        "log_context": {"()": "backend.common.logcontext.LogContextFilter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["log_context", "redact_secrets"],
        }
    },
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
# Python warnings become log records (logger py.warnings), so a JSON stream has no bare stderr lines.
logging.captureWarnings(LOG_FORMAT == "json")
