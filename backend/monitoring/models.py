"""Bookkeeping that shows whether the platform does its job: one row per dispatch slot, and heartbeats."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class DispatchRun(models.Model):
    """One dispatch of one schedule for one time slot, and how its fan-out went.

    The unique (schedule, slot) pair is also the claim that makes a doubled beat tick, or a
    second beat process, dispatch a slot once.
    """

    class Status(models.TextChoices):
        RUNNING = "running", "running"
        DONE = "done", "done"
        SKIPPED = "skipped", "skipped (previous run still open)"

    schedule = models.CharField(max_length=200, db_index=True)
    slot = models.DateTimeField(help_text="Start of the time slot this run covers (UTC).")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    planned = models.PositiveIntegerField(default=0, help_text="Assets the dispatcher planned.")
    done = models.PositiveIntegerField(default=0, help_text="Assets whose batch succeeded.")
    failed = models.PositiveIntegerField(default=0, help_text="Assets whose batch finally failed.")
    batches = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-slot"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "slot"], name="dispatchrun_one_per_slot"),
            models.CheckConstraint(condition=Q(done__lte=models.F("planned")), name="dispatchrun_done_le_planned"),
        ]

    def __str__(self) -> str:
        return f"{self.schedule} @ {self.slot:%Y-%m-%d %H:%M:%S}"

    @property
    def completeness(self) -> float | None:
        """Share of planned assets done, in percent (None when nothing was planned)."""
        return round(100 * self.done / self.planned, 1) if self.planned else None

    @property
    def is_open(self) -> bool:
        """Whether some planned work has neither succeeded nor failed yet."""
        return self.status == self.Status.RUNNING and self.done + self.failed < self.planned


class Heartbeat(models.Model):
    """The last time a component proved it was alive (beat through the heartbeat task, workers)."""

    component = models.CharField(max_length=100, unique=True)
    last_seen = models.DateTimeField()
    detail = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.component} {self.last_seen:%Y-%m-%d %H:%M:%S}"
