"""Every metric the workers, beat and web write, with its HELP text (docs/OPERATIONS.md, "Metrics").

All metrics are labelled: their values are created on first use, after ``multiproc.enable`` chose
where values live. None is registered in a registry; /metrics collects them from the files.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from backend.providers.errors import CircuitOpenError, ProviderPausedError
from backend.providers.ratelimit import RateLimitedError, RateLimiterUnavailableError

TASK_LABELS = ("task", "queue")
RUNTIME_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120)
QUEUE_WAIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)
PROVIDER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20)


def _counter(name: str, doc: str, labels: tuple[str, ...] = TASK_LABELS) -> Counter:
    return Counter(name, doc, labels, registry=None)


TASKS_SENT = _counter("financehub_celery_tasks_sent", "Task messages published, by task and target queue")
TASKS_RECEIVED = _counter("financehub_celery_tasks_received", "Task messages a worker took off a queue")
TASKS_STARTED = _counter("financehub_celery_tasks_started", "Task runs started in a worker pool process")
TASKS_SUCCEEDED = _counter("financehub_celery_tasks_succeeded", "Task runs that returned a result")
TASKS_FAILED = _counter(
    "financehub_celery_tasks_failed", "Task runs that finally failed, by exception class", (*TASK_LABELS, "exception")
)
TASKS_RETRIED = _counter(
    "financehub_celery_tasks_retried",
    "Task runs that scheduled a retry, by the exception that caused it",
    (*TASK_LABELS, "reason"),
)
TASKS_DEFERRED = _counter(
    "financehub_celery_tasks_deferred",
    "Task runs sent again without spending a retry: they asked no provider (every one paused or its circuit open)",
)
TASKS_REJECTED = _counter(
    "financehub_celery_tasks_rejected",
    "Task messages rejected or ignored (Reject/Ignore raised, unknown task, undecodable message)",
    (*TASK_LABELS, "reason"),
)
TASKS_RUNNING = Gauge(
    "financehub_celery_tasks_running",
    "Tasks running right now in live worker processes",
    TASK_LABELS,
    registry=None,
    multiprocess_mode="livesum",
)
TASK_RUNTIME = Histogram(
    "financehub_celery_task_runtime_seconds",
    "Wall time of one task run (start to finish, retries counted separately)",
    TASK_LABELS,
    buckets=RUNTIME_BUCKETS,
    registry=None,
)
QUEUE_WAIT = Histogram(
    "financehub_celery_task_queue_wait_seconds",
    "Time from publish (or from the ETA of a delayed retry) to the start of the run",
    TASK_LABELS,
    buckets=QUEUE_WAIT_BUCKETS,
    registry=None,
)
PROVIDER_REQUESTS = _counter(
    "financehub_provider_requests",
    "Calls of a provider by a chain, by outcome: ok, partial (some symbols failed) or the error class",
    ("provider", "operation", "outcome"),
)
PROVIDER_LATENCY = Histogram(
    "financehub_provider_request_seconds",
    "Duration of provider calls that reached the provider (local refusals left out)",
    ("provider", "operation"),
    buckets=PROVIDER_BUCKETS,
    registry=None,
)

# Refused before any byte left: not a provider's latency.
LOCAL_REFUSALS = frozenset(
    cls.__name__ for cls in (CircuitOpenError, ProviderPausedError, RateLimitedError, RateLimiterUnavailableError)
)


def provider_observer(provider: str, operation: str, outcome: str, seconds: float) -> None:
    """The callback a ``ProviderChain`` calls after each provider call (see ``sources``)."""
    PROVIDER_REQUESTS.labels(provider, operation, outcome).inc()
    if outcome not in LOCAL_REFUSALS:
        PROVIDER_LATENCY.labels(provider, operation).observe(seconds)
