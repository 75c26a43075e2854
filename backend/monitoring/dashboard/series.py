"""Counts per time bucket for the dashboard's charts, each read in one grouped query.

A bucket is ``floor(epoch seconds / bucket seconds)``, computed by the database (PostgreSQL and
SQLite both), so a chart over six hours of task results moves a few dozen rows, not every result.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Avg, Count, F, FloatField, Func, IntegerField, Max, Q, QuerySet, Sum
from django.db.models.functions import Cast, Floor
from django.utils import timezone
from django_celery_results.models import TaskResult

from backend.deadletters.models import DeadLetter
from backend.tasks.models import DispatchBatch, DispatchRun

BUCKET = timedelta(minutes=10)
WINDOW = timedelta(hours=6)
# Celery states shown as they are; any other final state is counted as "other".
TASK_STATES = {"SUCCESS": "succeeded", "FAILURE": "failed", "RETRY": "retrying", "REVOKED": "revoked"}


class Epoch(Func):
    """Seconds since 1970 of a timestamp column, as a float, in the database."""

    output_field = FloatField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="EXTRACT(EPOCH FROM %(expressions)s)", **extra)

    def as_sqlite(self, compiler, connection, **extra):
        # julianday keeps the fraction of a second that strftime('%s') would drop.
        return self.as_sql(
            compiler, connection, template="((julianday(%(expressions)s) - 2440587.5) * 86400.0)", **extra
        )


@dataclass(frozen=True)
class Series:
    """One named line or stack of a chart: one value per bucket."""

    name: str
    values: tuple[float, ...]

    @property
    def total(self) -> float:
        return sum(self.values)


@dataclass(frozen=True)
class TimeSeries:
    """Aligned series over consecutive buckets starting at ``starts`` (UTC)."""

    starts: tuple[datetime, ...]
    bucket: timedelta
    series: tuple[Series, ...]
    unit: str = ""

    @property
    def empty(self) -> bool:
        """Whether every value is zero (nothing happened in the window)."""
        return not any(any(s.values) for s in self.series)


def bucket_index(field: str, bucket: timedelta = BUCKET) -> Cast:
    """The database expression numbering ``field``'s bucket."""
    return Cast(Floor(Epoch(F(field)) / bucket.total_seconds()), IntegerField())


def _grid(now: datetime, window: timedelta, bucket: timedelta) -> list[int]:
    last = int(now.timestamp() // bucket.total_seconds())
    count = int(window / bucket)
    return list(range(last - count + 1, last + 1))


def _counts(rows: QuerySet, field: str, since: datetime, bucket: timedelta, *by: str) -> QuerySet:
    """(bucket, *by, count) of ``rows`` whose ``field`` is after ``since``, grouped by bucket and ``by``."""
    return (
        rows.filter(**{f"{field}__gt": since})
        .annotate(b=bucket_index(field, bucket))
        .values_list("b", *by)
        .annotate(n=Count("pk"))
        .order_by()
    )


def _assemble(
    rows: Iterable[tuple[int, str, float | None]], names: Iterable[str], grid: list[int], bucket: timedelta, unit: str
) -> TimeSeries:
    """Series per name from (bucket, name, value) rows; missing buckets are zero."""
    position = {index: i for i, index in enumerate(grid)}
    values: dict[str, list[float]] = {name: [0.0] * len(grid) for name in names}
    for index, name, value in rows:
        if index in position and value is not None:
            values.setdefault(name, [0.0] * len(grid))[position[index]] += float(value)
    starts = tuple(datetime.fromtimestamp(i * bucket.total_seconds(), tz=UTC) for i in grid)
    return TimeSeries(starts, bucket, tuple(Series(n, tuple(v)) for n, v in values.items()), unit)


def task_results(now: datetime | None = None, *, window: timedelta = WINDOW, bucket: timedelta = BUCKET) -> TimeSeries:
    """Tasks that finished per bucket, stacked by final state (from the result table).

    Dispatched batches store no SUCCESS row unless ``BATCH_TASK_RESULTS`` is on (their failures and
    retries still do): a batch that ended with nothing failed is then counted as succeeded from its
    run-accounting row instead, so the chart shows the real throughput either way.
    """
    now = now or timezone.now()
    grid = _grid(now, window, bucket)
    rows = _counts(TaskResult.objects.all(), "date_done", now - window, bucket, "status")
    named = [(b, TASK_STATES.get(status, "other"), n) for b, status, n in rows]
    if not settings.BATCH_TASK_RESULTS:
        batches = _counts(DispatchBatch.objects.filter(failed_count=0), "updated_at", now - window, bucket)
        named += [(b, "succeeded", n) for b, n in batches]
    return _assemble(named, [*TASK_STATES.values(), "other"], grid, bucket, "tasks")


def dead_letters(now: datetime | None = None, *, window: timedelta = WINDOW, bucket: timedelta = BUCKET) -> TimeSeries:
    """New dead letters per bucket (by their first failure), stacked by task."""
    now = now or timezone.now()
    grid = _grid(now, window, bucket)
    rows = _counts(DeadLetter.objects.all(), "first_failure_at", now - window, bucket, "task_name")
    return _assemble(rows, [], grid, bucket, "dead letters")


def dispatch_outcomes(
    now: datetime | None = None, *, window: timedelta = WINDOW, bucket: timedelta = BUCKET
) -> TimeSeries:
    """Planned assets of the periodic runs started in each bucket: done, failed, and still missing."""
    now = now or timezone.now()
    grid = _grid(now, window, bucket)
    rows = (
        DispatchRun.objects.filter(started_at__gt=now - window)
        .exclude(status=DispatchRun.Status.SKIPPED)
        .annotate(b=bucket_index("started_at", bucket))
        .values("b")
        .annotate(done_n=Sum("done"), failed_n=Sum("failed"), missing_n=Sum(F("planned") - F("done") - F("failed")))
        .order_by()
    )
    flat = []
    for row in rows:
        flat += [(row["b"], "done", row["done_n"]), (row["b"], "failed", row["failed_n"])]
        flat.append((row["b"], "missing", max(0, row["missing_n"] or 0)))
    return _assemble(flat, ["done", "failed", "missing"], grid, bucket, "assets")


def tick_wait(now: datetime | None = None, *, window: timedelta = WINDOW, bucket: timedelta = BUCKET) -> TimeSeries:
    """Seconds from beat sending a tick to a worker starting it (average and worst per bucket)."""
    now = now or timezone.now()
    grid = _grid(now, window, bucket)
    wait = Epoch(F("started_at")) - Epoch(F("tick_at"))
    rows = (
        DispatchRun.objects.filter(Q(started_at__gt=now - window), tick_at__isnull=False)
        .annotate(b=bucket_index("started_at", bucket), wait=wait)
        .values("b")
        .annotate(avg=Avg("wait"), worst=Max("wait"))
        .order_by()
    )
    flat = []
    for row in rows:
        flat += [(row["b"], "average", max(0.0, row["avg"])), (row["b"], "worst", max(0.0, row["worst"]))]
    return _assemble(flat, ["average", "worst"], grid, bucket, "seconds")
