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
from django.db.models import Count, Max
from django.utils import timezone
from django_celery_results.models import TaskResult
from kombu.exceptions import OperationalError as BrokerError
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from backend.core.celery import app
from backend.market.models import Asset, Quote
from backend.providers.breaker import CLOSED, HALF_OPEN, OPEN
from backend.tasks import deadletters
from backend.tasks.models import DeadLetter
from backend.tasks.runs import DispatchRun, Heartbeat

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

        age = GaugeMetricFamily(
            "financehub_data_age_seconds", "Age of the newest quote per asset class", labels=["asset_class"]
        )
        for code, newest in (
            Quote.objects.filter(asset__is_active=True)
            .values_list("asset__asset_type__code")
            .annotate(newest=Max("fetched_at"))
        ):
            age.add_metric([code], (now - newest).total_seconds())
        yield age

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


def _breaker_states() -> Iterator[Metric]:
    from backend.tasks.sources import QUOTE_CHAINS, circuit_breaker  # built lazily, on the first scrape

    breaker = GaugeMetricFamily(
        "financehub_provider_breaker_state", "Circuit per provider: 0 closed, 1 half-open, 2 open", labels=["provider"]
    )
    providers = sorted({p for chain in QUOTE_CHAINS.values() for p in chain} | {"newsapi"})
    for provider in providers:
        breaker.add_metric([provider], BREAKER_VALUES[circuit_breaker().state(provider).state])
    yield breaker
