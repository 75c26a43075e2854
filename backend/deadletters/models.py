"""The dead letters of tasks that finally failed (and of messages no task could run), and what
operators did with them.

Both tables keep the names they had when these models belonged to the ``tasks`` app (``db_table``):
the move to this app changed the state Django keeps of them, never the tables or their rows
(``migrations/0001_initial.py``).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class DeadLetter(models.Model):
    """One finally-failed task, kept until an operator replays or discards it.

    ``task_id`` is the natural key: the same failure recorded twice (a redelivery, the
    fallback flushed after a direct write) updates one row instead of adding another.
    Arguments, messages and tracebacks are stored with secrets redacted.
    """

    class State(models.TextChoices):
        OPEN = "open", "open"
        REPLAYED = "replayed", "replayed (running)"
        RESOLVED = "resolved", "replay succeeded"
        FAILED_AGAIN = "failed_again", "replay failed again"
        DISCARDED = "discarded", "discarded"

    class Origin(models.TextChoices):
        """Where the dead letter comes from: a task that ran and failed, or a message the consumer
        discarded before any task could run it."""

        TASK = "task", "task failed"
        UNREGISTERED = "unregistered", "unregistered task"
        REJECTED = "rejected", "message rejected"
        UNDECODABLE = "undecodable", "undecodable message"
        UNKNOWN = "unknown", "not a task message"

    task_name = models.CharField(max_length=200, db_index=True, blank=True)
    task_id = models.CharField(max_length=255, unique=True)
    origin = models.CharField(max_length=20, choices=Origin.choices, default=Origin.TASK, db_index=True)
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    arguments_known = models.BooleanField(
        default=True, help_text="False when the message could not be decoded: there is nothing to re-send."
    )
    arguments_truncated = models.BooleanField(
        default=False,
        help_text="The arguments were cut to DEADLETTER_KEEP_CHARS: a replay sends the cut ones, once confirmed.",
    )
    arguments_size = models.PositiveIntegerField(
        default=0, help_text="Characters of the arguments as JSON when they were captured, before any cut."
    )
    message = models.JSONField(
        default=dict,
        blank=True,
        help_text="A discarded message as it arrived: headers, content type, body (redacted, bounded).",
    )
    # Derived at capture time so admin and the command can filter by asset, provider and exception.
    symbols = models.TextField(blank=True, default="", help_text="Symbols in the arguments, as ',AAPL,MSFT,'.")
    providers = models.TextField(
        blank=True, default="", help_text="Every provider that failed, in the order tried, as ',yahoo,alphavantage,'."
    )
    provider_failures = models.JSONField(
        default=list, blank=True, help_text="Why each provider failed: [{provider, error, message}]."
    )
    exception_class = models.CharField(max_length=255, db_index=True, help_text="Dotted name of the exception.")
    exception_lineage = models.TextField(
        blank=True, default="", help_text="The exception class and its bases, dotted, as ',a.B,builtins.Exception,'."
    )
    exception_message = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")
    retries = models.PositiveIntegerField(default=0, help_text="Retries used before the final failure.")
    deliveries = models.PositiveIntegerField(default=1, help_text="Times the failing message was delivered.")
    queue = models.CharField(max_length=100, blank=True, default="")
    worker = models.CharField(max_length=255, blank=True, default="")
    sanitised = models.BooleanField(
        default=False,
        help_text="Stored with characters the database refuses (NUL bytes) escaped; not replayable as stored.",
    )
    first_failure_at = models.DateTimeField()
    last_failure_at = models.DateTimeField(db_index=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.OPEN, db_index=True)
    replay_of = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="replayed_as",
        help_text="The dead letter whose replay failed into this one.",
    )
    replay_task_id = models.CharField(max_length=255, blank=True, default="", db_index=True)
    replayed_by = models.CharField(max_length=150, blank=True, default="")
    replayed_at = models.DateTimeField(null=True, blank=True)
    discarded_by = models.CharField(max_length=150, blank=True, default="")
    discarded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "tasks_deadletter"
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

    @property
    def provider_list(self) -> list[str]:
        """The providers that failed, in the order they were tried."""
        return [p for p in self.providers.split(",") if p]

    @property
    def exception_name(self) -> str:
        """The exception's class name without its module: how every list shows it."""
        return self.exception_class.rsplit(".", 1)[-1]

    @property
    def lineage_names(self) -> list[str]:
        """Class names of the exception and its bases, most specific first."""
        return [name.rsplit(".", 1)[-1] for name in self.exception_lineage.split(",") if name]

    def replay_chain(self) -> list[DeadLetter]:
        """Every dead letter of this failure, the original first: each one's replay failed into the next."""
        chain: list[DeadLetter] = [self]
        seen = {self.pk}
        while chain[0].replay_of_id is not None and chain[0].replay_of_id not in seen:
            earlier = chain[0].replay_of
            seen.add(earlier.pk)
            chain.insert(0, earlier)
        current = self
        while True:
            later = DeadLetter.objects.filter(replay_of=current).first()
            if later is None or later.pk in seen:
                break
            seen.add(later.pk)
            chain.append(later)
            current = later
        return chain


class DeadLetterAction(models.Model):
    """One thing that happened to a dead letter: an operator's replay or discard (one by one or in
    bulk, refused or not) and the outcome of a replay. Kept forever with its dead letter."""

    class Kind(models.TextChoices):
        REPLAY = "replay", "replay"
        DISCARD = "discard", "discard"
        OUTCOME = "outcome", "replay outcome"

    class Result(models.TextChoices):
        SENT = "sent", "sent"
        DISCARDED = "discarded", "discarded"
        REFUSED = "refused", "refused"
        SEND_FAILED = "send_failed", "send failed"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED_AGAIN = "failed_again", "failed again"

    dead_letter = models.ForeignKey(DeadLetter, on_delete=models.CASCADE, related_name="actions")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    result = models.CharField(max_length=20, choices=Result.choices)
    actor = models.CharField(max_length=150, help_text="admin:<user>, cli:<os user>, or worker:<host> for outcomes.")
    at = models.DateTimeField(default=timezone.now, db_index=True)
    bulk = models.CharField(max_length=64, blank=True, default="", help_text="Shared by the actions of one bulk run.")
    detail = models.TextField(blank=True, default="", help_text="The new task id, or why it was refused.")

    class Meta:
        db_table = "tasks_deadletteraction"
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.kind} {self.result} by {self.actor}"
