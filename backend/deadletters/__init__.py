"""Dead letters: every task that finally fails leaves one row an operator can read, replay or discard.

A Django app of its own (``apps.py``: it connects its receivers and plugs its delivery cap and its
housekeeping into the task platform, which imports nothing from here). One module per job:

* ``models``     — ``DeadLetter`` and its history, ``DeadLetterAction`` (tables kept from the tasks app);
* ``records``    — what one failure looks like, redacted and JSON-ready (providers, lineage, replay of);
* ``storage``    — where state lives outside the database (Redis when there is one, else var/);
* ``rows``       — a record merged into the table: made storable, linked to the dead letter it replayed;
* ``fallback``   — records the database refused wait there until ``flush_fallback`` moves them in;
* ``parking``    — records the database will never take as they are, set aside visibly;
* ``bounds``     — what a dead letter keeps of arguments and messages (``DEADLETTER_KEEP_CHARS``);
* ``capture``    — the Celery signal receivers that write dead letters (and redact the failure first);
* ``wire``       — a message the consumer discarded (unregistered, refused, undecodable) as a record;
* ``consumer``   — the consumer's discards caught: its signals and a bootstep on its decode errors;
* ``poison``     — the delivery cap for messages whose worker keeps dying under them;
* ``operations`` — the filter vocabulary, replay (sent after commit), discard, refusals, shared by all;
* ``bulk``       — replay and discard over many rows: throttled, summed up by outcome;
* ``hints``      — the warning beside Replay when the recorded error will recur (permanent errors);
* ``history``    — every action on a dead letter (who, when, what, result) and replay outcomes;
* ``admin`` and ``admin_display`` — the admin pages; ``management/commands/deadletters.py`` — the command.

Redaction with this deployment's secrets is the task platform's (``backend.tasks.secrets``): every
message a task sends is redacted by it too. Its names are re-exported here for the callers of this app.

Nothing here imports models at module level: the package is loaded while Django sets up.
"""

from __future__ import annotations

from backend.tasks.log_fields import symbols_in
from backend.tasks.redaction_signals import on_task_retry, redact_published_reprs
from backend.tasks.secrets import (
    REDACTED,
    configured_secrets,
    redact_text,
    redact_value,
    redacted_repr,
    scrub_exception,
    send_with_redacted_reprs,
)

from .bulk import BulkResult, discard_many, preview_discard, preview_replay, replay_many
from .capture import on_task_failure, on_task_internal_error, on_task_success
from .consumer import DecodeErrorStep, on_task_rejected, on_task_unknown, record_discarded
from .fallback import (
    FALLBACK_REDIS_KEY,
    FlushResult,
    flush_fallback,
    pending_fallback,
    record_failure,
    write_fallback,
)
from .hints import permanent_cause, replay_warning, truncation_text
from .history import mark_replay_outcome, record_action
from .operations import ReplayRefused, discard, filter_dead_letters, refuse, replay, replay_refusal
from .parking import clear_parked, park, parked_count, parked_records
from .poison import (
    PoisonMessageError,
    clear_deliveries,
    count_delivery,
    current_deliveries,
    delivery_guard,
    prune_delivery_counters,
)
from .records import REPLAY_HEADER, FailureRecord, build_record, exception_class_name, exception_lineage
from .rows import UnstorableRecord, apply_record, storable
from .storage import fallback_file, uses_redis

__all__ = [
    "FALLBACK_REDIS_KEY",
    "REDACTED",
    "REPLAY_HEADER",
    "BulkResult",
    "DecodeErrorStep",
    "FailureRecord",
    "FlushResult",
    "PoisonMessageError",
    "ReplayRefused",
    "apply_record",
    "build_record",
    "UnstorableRecord",
    "clear_deliveries",
    "clear_parked",
    "exception_lineage",
    "park",
    "parked_count",
    "parked_records",
    "storable",
    "configured_secrets",
    "count_delivery",
    "current_deliveries",
    "delivery_guard",
    "discard",
    "discard_many",
    "exception_class_name",
    "fallback_file",
    "filter_dead_letters",
    "flush_fallback",
    "on_task_failure",
    "on_task_internal_error",
    "on_task_rejected",
    "on_task_unknown",
    "on_task_retry",
    "on_task_success",
    "pending_fallback",
    "prune_delivery_counters",
    "record_discarded",
    "record_failure",
    "redact_published_reprs",
    "redact_text",
    "refuse",
    "permanent_cause",
    "replay_warning",
    "truncation_text",
    "redact_value",
    "redacted_repr",
    "send_with_redacted_reprs",
    "replay",
    "replay_many",
    "replay_refusal",
    "preview_discard",
    "preview_replay",
    "mark_replay_outcome",
    "record_action",
    "scrub_exception",
    "symbols_in",
    "uses_redis",
    "write_fallback",
]
