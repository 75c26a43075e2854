"""Prometheus metrics computed from shared state at scrape time.

Every number comes from a store all processes share (the database, the broker, the breaker's Redis
hash), so one scrape of any web process sees the whole platform and no multi-process registry is
needed. Per-task runtime histograms and per-request provider latency would need in-process
instrumentation in the workers; they are not here yet.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db.models import Count
from django.utils import timezone
from django_celery_results.models import TaskResult
from kombu.exceptions import OperationalError as BrokerError
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from backend.core.celery import app
from backend.market.freshness import STALEST_LIMIT, FreshnessReport
from backend.market.models import Asset
from backend.providers.breaker import CLOSED, HALF_OPEN, OPEN
from backend.tasks import deadletters
from backend.tasks.models import DeadLetter
from backend.tasks.runs import DispatchRun, Heartbeat

from .freshness import current_freshness

# Task results counted over this window (older rows are pruned by cleanup anyway).
TASK_WINDOW = timedelta(hours=24)
BREAKER_VALUES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}


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

        yield GaugeMetricFamily(
            "financehub_quarantined_assets",
            "Assets skipped by quote fetches because every provider kept reporting them unknown",
            value=Asset.objects.quarantined().count(),
        )

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
        "assets": GaugeMetricFamily(
            "financehub_assets", "Active, unquarantined assets per class (the ones kept fresh)", labels=["asset_class"]
        ),
        "stale": GaugeMetricFamily(
            "financehub_stale_assets",
            "Assets whose quote (provider as-of time) is older than their calendar-aware target, or missing",
            labels=["asset_class"],
        ),
        "share": GaugeMetricFamily(
            "financehub_fresh_share", "Share of a class's assets within their target (0-1)", labels=["asset_class"]
        ),
        "missing": GaugeMetricFamily(
            "financehub_assets_without_quote", "Assets with no quote at all yet", labels=["asset_class"]
        ),
        "target": GaugeMetricFamily(
            "financehub_freshness_target_seconds",
            "Age a class's quotes may reach while its market is in session",
            labels=["asset_class"],
        ),
    }
    ages = GaugeMetricFamily(
        "financehub_asset_age_seconds",
        "Quantiles of quote age (provider as-of time) across a class's assets; quantile 1 is the oldest",
        labels=["asset_class", "quantile"],
    )
    for row in report.classes:
        label = [row.asset_class]
        families["assets"].add_metric(label, row.assets)
        families["stale"].add_metric(label, row.stale)
        families["share"].add_metric(label, row.fresh_share)
        families["missing"].add_metric(label, row.without_quote)
        families["target"].add_metric(label, row.target_seconds)
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
