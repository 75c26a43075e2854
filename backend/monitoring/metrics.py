"""The /metrics registry: platform gauges read at scrape time, plus the workers' own counters.

Two sources, one exposition (``build_registry``):

* ``PlatformCollector``: gauges computed from stores every process shares (database, broker, the
  breaker's and pauses' Redis keys, the workers' liveness entries), so any web process sees the
  whole platform;
* prometheus-client's ``MultiProcessCollector`` over ``PROMETHEUS_MULTIPROC_DIR``: the task and
  provider counters and histograms that workers, beat and web write (``backend.tasks.telemetry``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db.models import Count
from django.utils import timezone
from django_celery_results.models import TaskResult
from kombu.exceptions import OperationalError as BrokerError
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from backend import deadletters
from backend.core.celery import app
from backend.deadletters.models import DeadLetter
from backend.market.freshness import STALEST_LIMIT, FreshnessReport
from backend.market.models import Asset
from backend.providers.breaker import CLOSED, HALF_OPEN, OPEN
from backend.tasks.freshness_targets import current_freshness
from backend.tasks.liveness import live_workers
from backend.tasks.models import DispatchRun, Heartbeat

# Task results counted over this window (older rows are pruned by cleanup anyway).
TASK_WINDOW = timedelta(hours=24)
BREAKER_VALUES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}
# The per-class gauges of the freshness report: its row's field -> (metric name, help).
CLASS_GAUGES = {
    "assets": ("financehub_assets", "Active, unquarantined assets per class (the ones kept fresh)"),
    "stale": (
        "financehub_stale_assets",
        "Assets whose quote (provider as-of time) is older than their calendar-aware target, or missing",
    ),
    "fresh_share": ("financehub_fresh_share", "Share of a class's assets within their target (0-1)"),
    "without_quote": ("financehub_assets_without_quote", "Assets with no quote at all yet"),
    "target_seconds": (
        "financehub_freshness_target_seconds",
        "Age a class's quotes may reach while its market is in session",
    ),
}


def queue_depths() -> dict[str, int]:
    """Messages waiting in each declared queue (passive declare: never creates one)."""
    depths: dict[str, int] = {}
    try:
        with app.connection_for_write() as conn:
            channel = conn.default_channel
            for name in settings.TASK_QUEUES:
                try:
                    depths[name] = channel.queue_declare(queue=name, passive=True).message_count
                except conn.channel_errors:
                    depths[name] = 0  # not declared yet: nothing has been sent to it
    except (BrokerError, OSError):
        return {}
    return depths


class PlatformCollector(Collector):
    """Collects the platform's gauges on every scrape."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()

        tasks = GaugeMetricFamily(
            "financehub_task_results", "Task results in the last 24 h by task and state", labels=["task", "state"]
        )
        for row in (
            TaskResult.objects.filter(date_done__gte=now - TASK_WINDOW)
            .values("task_name", "status")
            .annotate(n=Count("id"))
        ):
            tasks.add_metric([row["task_name"] or "unknown", row["status"]], row["n"])
        yield tasks

        letters = GaugeMetricFamily("financehub_dead_letters", "Dead letters by state", labels=["state"])
        counts = dict(DeadLetter.objects.values_list("state").annotate(n=Count("id")))
        for state in DeadLetter.State.values:
            letters.add_metric([state], counts.get(state, 0))
        yield letters

        waiting = GaugeMetricFamily(
            "financehub_dead_letter_fallback_records",
            "Dead-letter records outside the table: pending (database was away) or parked (refused as they are)",
            labels=["state"],
        )
        waiting.add_metric(["pending"], deadletters.pending_fallback())
        waiting.add_metric(["parked"], deadletters.parked_count())
        yield waiting

        depth = GaugeMetricFamily("financehub_queue_depth", "Messages waiting per queue", labels=["queue"])
        for queue, count in queue_depths().items():
            depth.add_metric([queue], count)
        yield depth

        yield from freshness_metrics(current_freshness(now))

        quarantined = GaugeMetricFamily(
            "financehub_quarantined_assets",
            "Active assets skipped by quote fetches because every provider kept reporting them unknown",
            labels=["asset_class"],
        )
        for code, n in (
            Asset.objects.active().quarantined().values_list("asset_type__code").annotate(n=Count("id")).order_by()
        ):
            quarantined.add_metric([code], n)
        yield quarantined

        open_letters = GaugeMetricFamily(
            "financehub_dead_letters_open",
            "Open dead letters (not replayed, resolved or discarded) by task and exception class",
            labels=["task", "exception"],
        )
        for task, exception, n in (
            DeadLetter.objects.filter(state=DeadLetter.State.OPEN)
            .values_list("task_name", "exception_class")
            .annotate(n=Count("id"))
            .order_by()
        ):
            open_letters.add_metric([task, exception.rsplit(".", 1)[-1] or "unknown"], n)
        yield open_letters

        workers = GaugeMetricFamily(
            "financehub_celery_workers",
            "Workers that published within the last three liveness intervals, per queue they consume",
            labels=["queue"],
        )
        for queue, hosts in live_workers().items():
            workers.add_metric([queue], len(hosts))
        yield workers

        beat = Heartbeat.objects.filter(component="beat").first()
        yield GaugeMetricFamily(
            "financehub_beat_heartbeat_age_seconds",
            "Seconds since beat's heartbeat task last ran (-1: never)",
            value=(now - beat.last_seen).total_seconds() if beat else -1,
        )

        complete = GaugeMetricFamily(
            "financehub_dispatch_completeness_percent",
            "Completeness of each schedule's latest run",
            labels=["schedule"],
        )
        latest: dict[str, DispatchRun] = {}
        for run in DispatchRun.objects.exclude(status=DispatchRun.Status.SKIPPED).order_by("schedule", "-slot"):
            latest.setdefault(run.schedule, run)
        missing = GaugeMetricFamily(
            "financehub_dispatch_missing_assets",
            "Assets of each schedule's latest run neither done nor failed (lost when the run is incomplete)",
            labels=["schedule", "status"],
        )
        for schedule, run in latest.items():
            if run.completeness is not None:
                complete.add_metric([schedule], run.completeness)
            missing.add_metric([schedule, run.status], run.missing)
        yield complete
        yield missing

        runs = GaugeMetricFamily(
            "financehub_dispatch_runs", "Periodic runs started in the last 24 h by status", labels=["status"]
        )
        by_status = dict(
            DispatchRun.objects.filter(started_at__gte=now - TASK_WINDOW).values_list("status").annotate(n=Count("id"))
        )
        for status in DispatchRun.Status.values:
            runs.add_metric([status], by_status.get(status, 0))
        yield runs

        yield from _breaker_states()


def freshness_metrics(report: FreshnessReport) -> Iterator[Metric]:
    """Per class: assets, stale assets, fresh share, assets never quoted, target and age quantiles; the stalest."""
    families = {
        field: GaugeMetricFamily(name, documentation, labels=["asset_class"])
        for field, (name, documentation) in CLASS_GAUGES.items()
    }
    ages = GaugeMetricFamily(
        "financehub_asset_age_seconds",
        "Quantiles of quote age (provider as-of time) across a class's assets; quantile 1 is the oldest",
        labels=["asset_class", "quantile"],
    )
    for row in report.classes:
        for field, family in families.items():
            family.add_metric([row.asset_class], getattr(row, field))
        for quantile, seconds in row.age_quantiles.items():
            ages.add_metric([row.asset_class, quantile], seconds)
    stalest = GaugeMetricFamily(
        "financehub_stalest_asset_age_seconds",
        f"Quote age of the {STALEST_LIMIT} stalest assets past their target (-1: never quoted)",
        labels=["asset_class", "symbol"],
    )
    for asset in report.stalest:
        stalest.add_metric([asset.asset_class, asset.symbol], -1 if asset.age_seconds is None else asset.age_seconds)
    yield from families.values()
    yield ages
    yield stalest


def _breaker_states() -> Iterator[Metric]:
    from backend.tasks.sources import QUOTE_CHAINS, circuit_breaker  # built lazily, on the first scrape

    breaker = GaugeMetricFamily(
        "financehub_provider_breaker_state", "Circuit per provider: 0 closed, 1 half-open, 2 open", labels=["provider"]
    )
    providers = sorted({p for chain in QUOTE_CHAINS.values() for p in chain} | {"newsapi"})
    for provider in providers:
        breaker.add_metric([provider], BREAKER_VALUES[circuit_breaker().state(provider).state])
    yield breaker
    paused = GaugeMetricFamily(
        "financehub_provider_pause_remaining_seconds",
        "Seconds until a provider that asked us to wait (Retry-After, quota notes) is used again; 0: not paused",
        labels=["provider"],
    )
    board = circuit_breaker().pauses
    for provider in providers:
        paused.add_metric([provider], board.remaining(provider))
    yield paused


def build_registry() -> CollectorRegistry:
    """A fresh registry for one scrape: the platform gauges and the merged per-process metric files."""
    registry = CollectorRegistry()
    registry.register(PlatformCollector())
    path = settings.PROMETHEUS_MULTIPROC_DIR
    if path.is_dir():
        MultiProcessCollector(registry, path=str(path))
    return registry
