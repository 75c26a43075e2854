"""Operations: the dashboard, `make run` ports, dead letters, metrics, worker liveness, alerts and their e-mail.

See docs/OPERATIONS.md, "Metrics", "Alerts", "Health endpoints".
"""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from ..environment import env_bool, env_float, env_int, env_list, env_str, persistent_secret
from .django import VAR_DIR

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
# The most characters a dead letter keeps of a task's arguments (as JSON) and of a discarded message's
# body and headers: a 100,000-character argument must not become a 100 KB row. A row whose arguments
# were cut is marked and replays only once an operator confirms (docs/OPERATIONS.md, "Replay").
DEADLETTER_KEEP_CHARS = env_int("DEADLETTER_KEEP_CHARS", 30_000)
if DEADLETTER_KEEP_CHARS < 1_000:
    raise ImproperlyConfigured(f"DEADLETTER_KEEP_CHARS ({DEADLETTER_KEEP_CHARS}) must be at least 1000")
# Where a dead letter goes when the database is unreachable and Redis is not the broker
# (append-only JSON lines, flushed into the table once the database is back).
DEADLETTER_FALLBACK_FILE = Path(env_str("DEADLETTER_FALLBACK_FILE", str(VAR_DIR / "deadletters" / "fallback.jsonl")))

# --- Metrics, liveness and alerts ----------------------------------------------------------------
# prometheus-client multiprocess mode: every worker, beat and web process writes its metric files here;
# /metrics merges them. Processes that should be scraped together must share this directory.
PROMETHEUS_MULTIPROC_DIR = Path(env_str("FINANCEHUB_METRICS_DIR", str(VAR_DIR / "prometheus")))
# Bearer token Prometheus sends to /metrics and to Flower's /metrics. Unset, one is generated once
# into var/metrics_token (point Prometheus's credentials_file at it); processes that do not share
# var/ (containers) must all be given the same METRICS_TOKEN.
METRICS_TOKEN = env_str("METRICS_TOKEN") or persistent_secret(VAR_DIR, "metrics_token")
# Flower's basic auth (user:password, comma-separated): Flower reads it itself as an option. Read here too
# so that start-up refuses a placeholder password and every log redacts the passwords.
FLOWER_BASIC_AUTH = env_str("FLOWER_BASIC_AUTH")
# /health/data's report is computed at most this often (seconds) by the web processes sharing the cache:
# a storm of polls costs one computation. 0 computes it for every request.
HEALTH_DATA_CACHE_SECONDS = env_float("HEALTH_DATA_CACHE_SECONDS", 5.0)
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
