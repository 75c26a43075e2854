"""Bookkeeping of the task platform: the dead letters of tasks that finally failed."""

from __future__ import annotations

from django.db import models


class DeadLetter(models.Model):
    """One finally-failed task, kept until an operator replays or discards it.

    ``task_id`` is the natural key: the same failure recorded twice (a redelivery, the
    fallback flushed after a direct write) updates one row instead of adding another.
    Arguments, messages and tracebacks are stored with secrets redacted.
    """

    class State(models.TextChoices):
        OPEN = "open", "open"
        REPLAYED = "replayed", "replayed"
        DISCARDED = "discarded", "discarded"
        RESOLVED = "resolved", "resolved"

    task_name = models.CharField(max_length=200, db_index=True)
    task_id = models.CharField(max_length=255, unique=True)
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    # Derived at capture time so admin and the command can filter by asset and provider.
    symbols = models.TextField(blank=True, default="", help_text="Symbols in the arguments, as ',AAPL,MSFT,'.")
    provider = models.CharField(max_length=50, blank=True, default="", db_index=True)
    exception_class = models.CharField(max_length=255, db_index=True)
    exception_message = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")
    retries = models.PositiveIntegerField(default=0, help_text="Retries used before the final failure.")
    deliveries = models.PositiveIntegerField(default=1, help_text="Times the failing message was delivered.")
    queue = models.CharField(max_length=100, blank=True, default="")
    worker = models.CharField(max_length=255, blank=True, default="")
    first_failure_at = models.DateTimeField()
    last_failure_at = models.DateTimeField(db_index=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN, db_index=True)
    replay_task_id = models.CharField(max_length=255, blank=True, default="", db_index=True)
    replayed_by = models.CharField(max_length=150, blank=True, default="")
    replayed_at = models.DateTimeField(null=True, blank=True)
    discarded_by = models.CharField(max_length=150, blank=True, default="")
    discarded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_failure_at"]
        permissions = [
            ("replay_deadletter", "Can replay a dead letter"),
            ("discard_deadletter", "Can discard a dead letter"),
        ]

    def __str__(self) -> str:
        return f"{self.task_name}[{self.task_id}] {self.state}"

    @property
    def symbol_list(self) -> list[str]:
        """The symbols found in the arguments."""
        return [s for s in self.symbols.split(",") if s]


# Run accounting and heartbeats live in their own module; imported here so Django registers them.
from .runs import DispatchBatch, DispatchRun, Heartbeat  # noqa: E402, F401
