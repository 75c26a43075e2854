"""Celery: broker and its transport options, time limits and retries, results, events, queues and priorities, beat.

https://docs.celeryq.dev/en/stable/userguide/configuration.html
"""

from __future__ import annotations

from kombu import Exchange, Queue

from ..environment import check_broker_url, env_bool, env_float, env_int, env_str
from .django import REDIS_URL, VAR_DIR

BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = check_broker_url(
    "CELERY_BROKER_URL" if env_str("CELERY_BROKER_URL") else "REDIS_URL",
    env_str("CELERY_BROKER_URL") or REDIS_URL or "filesystem://localhost/",
)
USES_FILESYSTEM_BROKER = CELERY_BROKER_URL.startswith("filesystem://")
USES_AMQP_BROKER = CELERY_BROKER_URL.split("://", 1)[0] in {"amqp", "amqps", "pyamqp"}

# Time limits, retry delays and the visibility timeout are one system. On Redis a message stays
# unacknowledged while a worker holds it: a retry waiting for its countdown, then running up to the
# hard limit. Held longer than visibility_timeout it is delivered again (a duplicate); a worker that
# dies holding it gives it back only after visibility_timeout plus one restore sweep. So: countdowns
# are capped (TASK_RETRY_BACKOFF_MAX), hard limit + that cap + a margin stay below the timeout
# (setting_checks.py; start-up refuses otherwise), and the timeout is short, so a killed worker's
# batches come back within about two minutes (docs/OPERATIONS.md, "What bounds recovery").
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 60)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 75)
TASK_RETRY_BACKOFF_MAX = env_int("TASK_RETRY_BACKOFF_MAX", 25)
TASK_RETRY_DELAY_FLOOR = env_int("TASK_RETRY_DELAY_FLOOR", 2)
# A provider's Retry-After is honoured up to this many seconds; past the cap above the retry hops
# (re-sent every TASK_RETRY_BACKOFF_MAX seconds) instead of waiting in one held message.
TASK_RETRY_AFTER_MAX = env_int("TASK_RETRY_AFTER_MAX", 600)
TASK_MAX_RETRIES = env_int("TASK_MAX_RETRIES", 5)
# A quote fetch that asked no provider (every one paused or its circuit open) waits for the first one
# without spending a retry, at most this many times and this many seconds in all; then it retries.
TASK_MAX_DEFERRALS = env_int("TASK_MAX_DEFERRALS", 20)
TASK_DEFERRAL_MAX_SECONDS = env_int("TASK_DEFERRAL_MAX_SECONDS", 300)
# Infrastructure faults (database, Redis, broker) are waited out this many times per task before
# the task fails; at the default cap that covers an outage of several minutes.
TASK_INFRA_MAX_RETRIES = env_int("TASK_INFRA_MAX_RETRIES", 20)
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 110)
# Seconds between the sweeps that give unacknowledged messages of dead workers back (kombu's default
# is one scan per 100 s; 5 s costs one small Redis query per worker).
CELERY_UNACKED_RESTORE_INTERVAL = env_int("CELERY_UNACKED_RESTORE_INTERVAL", 5)
# Headroom between a held message's longest life and the visibility timeout (clock skew, prefetch).
VISIBILITY_MARGIN_SECONDS = 5
# RabbitMQ closes the channel of a consumer that holds a delivery unacknowledged longer than its
# consumer_timeout (rabbitmq.conf; 30 min by default) and redelivers everything that channel held.
# Set this to the broker's value: start-up refuses a retry countdown plus time limits that reach it.
RABBITMQ_CONSUMER_TIMEOUT = env_int("RABBITMQ_CONSUMER_TIMEOUT", 1800)
# RabbitMQ: a publish returns once the broker has taken the message (publisher confirms), so a
# dispatch never counts a batch the broker dropped. No visibility timeout there: a dead consumer's
# unacknowledged messages go back to their queue the moment its connection closes.
AMQP_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}

if USES_FILESYSTEM_BROKER:
    # kombu's filesystem transport, each message written whole before a consumer can see it.
    CELERY_BROKER_TRANSPORT = "backend.core.filesystem_broker:Transport"
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
elif USES_AMQP_BROKER:
    CELERY_BROKER_TRANSPORT_OPTIONS = dict(AMQP_BROKER_TRANSPORT_OPTIONS)
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
# x-max-priority makes RabbitMQ queues priority queues (Redis ignores it; its steps are above). RabbitMQ
# serves higher numbers first: backend/tasks/priority.py mirrors the number on the wire.
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
