"""Run accounting the tasks write: one row per periodic run and per batch outcome, and heartbeats.

The task platform writes these rows; ``backend.monitoring`` only reads them (health, metrics, the
dashboard). Their admin pages are ``admin.py`` beside this module.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class DispatchRun(models.Model):
    """One run of one schedule for one time slot, and how its fan-out went.

    The unique (schedule, slot) pair among non-skipped rows is the claim that makes a doubled beat
    tick, or a second beat process, run a slot once. Skipped ticks are rows too (with the reason),
    any number per slot. ``done``/``failed`` are derived from the run's ``DispatchBatch`` rows.
    """

    class Status(models.TextChoices):
        RUNNING = "running", "running"
        DONE = "done", "done"
        INCOMPLETE = "incomplete", "incomplete (deadline passed with work unaccounted)"
        SKIPPED = "skipped", "skipped (see note)"

    schedule = models.CharField(max_length=200, db_index=True)
    slot = models.DateTimeField(help_text="Start of the time slot this run covers (UTC).")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    planned = models.PositiveIntegerField(default=0, help_text="Assets the dispatcher planned.")
    done = models.PositiveIntegerField(default=0, help_text="Assets whose batch succeeded.")
    failed = models.PositiveIntegerField(default=0, help_text="Assets whose batch finally failed.")
    batches = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField(
        null=True, blank=True, help_text="Past this the run is closed as incomplete if work is unaccounted."
    )
    tick_at = models.DateTimeField(null=True, blank=True, help_text="When beat sent the tick (empty: not a beat tick).")
    task_id = models.CharField(
        max_length=255, blank=True, default="", db_index=True, help_text="The task that claimed the slot."
    )
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-slot"]
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "slot"], condition=~Q(status="skipped"), name="dispatchrun_one_per_slot"
            ),
            models.CheckConstraint(condition=Q(done__lte=models.F("planned")), name="dispatchrun_done_le_planned"),
        ]

    def __str__(self) -> str:
        return f"{self.schedule} @ {self.slot:%Y-%m-%d %H:%M:%S}"

    @property
    def completeness(self) -> float | None:
        """Share of planned assets done, in percent (None when nothing was planned)."""
        return round(100 * self.done / self.planned, 1) if self.planned else None

    @property
    def missing(self) -> int:
        """Planned assets neither done nor failed (still pending, or lost when the run is incomplete)."""
        return max(0, self.planned - self.done - self.failed)

    @property
    def is_open(self) -> bool:
        """Whether some planned work has neither succeeded nor failed yet."""
        return self.status == self.Status.RUNNING and self.missing > 0


class DispatchBatch(models.Model):
    """The outcome of one batch of a run, as item sets, so a redelivered batch never counts twice.

    ``done`` is the union of every item any delivery stored; ``failed`` the union of failed items
    minus ``done`` (a retry that later stores an item moves it). ``index`` is the batch's position in
    the fan-out; -1 collects outcomes sent without one.
    """

    UNNUMBERED = -1

    run = models.ForeignKey(DispatchRun, on_delete=models.CASCADE, related_name="batch_outcomes")
    index = models.IntegerField()
    done = models.JSONField(default=list, blank=True)
    failed = models.JSONField(default=list, blank=True)
    done_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["run", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="dispatchbatch_one_per_index")]

    def __str__(self) -> str:
        return f"run {self.run_id} batch {self.index}: {self.done_count} done, {self.failed_count} failed"


class Heartbeat(models.Model):
    """The last time a component proved it was alive (beat through the heartbeat task, workers)."""

    component = models.CharField(max_length=100, unique=True)
    last_seen = models.DateTimeField()
    detail = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.component} {self.last_seen:%Y-%m-%d %H:%M:%S}"
