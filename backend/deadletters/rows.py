"""A record becomes a row: the order-independent merge on the task id, made storable, linked to the
dead letter it replayed.

A record is stored as it came when the database takes it. Characters no database should be asked
to keep (NUL bytes, which PostgreSQL refuses in text and JSON, and unpaired surrogates) are escaped
first and the row is flagged ``sanitised``; a record the database still refuses for its content
raises ``UnstorableRecord`` so the caller parks it instead of retrying it forever.
"""

from __future__ import annotations

import re
from dataclasses import fields, replace
from datetime import datetime
from typing import Any

from django.db import DataError, IntegrityError, transaction

from .history import mark_replay_outcome
from .records import FailureRecord

_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


class UnstorableRecord(Exception):
    """The database refused the record for what it contains, not because it is away."""


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    return "\\x00" if char == "\x00" else f"\\u{ord(char):04x}"


def _clean(value: Any, changed: list[bool]) -> Any:
    if isinstance(value, str):
        cleaned = _UNSTORABLE.sub(_escaped, value)
        if cleaned != value:
            changed.append(True)
        return cleaned
    if isinstance(value, dict):
        return {_clean(str(k), changed): _clean(v, changed) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v, changed) for v in value]
    return value


def storable(record: FailureRecord) -> tuple[FailureRecord, bool]:
    """``record`` with NUL bytes and unpaired surrogates escaped (``\\x00``), and whether any was."""
    changed: list[bool] = []
    cleaned = replace(record, **{f.name: _clean(getattr(record, f.name), changed) for f in fields(record)})
    return cleaned, bool(changed)


def apply_record(record: FailureRecord) -> bool:
    """Upsert ``record`` into the table; True when it created the row.

    The merge is order-independent, so applying a record twice, or two records of one task in
    either order, gives the same row: failure times widen, counters take the maximum, and the
    exception details come from the earliest failure (the cause, not a later echo of it).
    Raises ``UnstorableRecord`` when the content is refused (a bad timestamp, a value too long).
    """
    record, sanitised = storable(record)
    try:
        failed_at = datetime.fromisoformat(record.failed_at)
        for attempt in range(2):
            try:
                return _merge(record, failed_at, sanitised)
            except IntegrityError:
                # Two processes created the same task's row at once: the second merges into it.
                if attempt:
                    raise
    except (DataError, ValueError, TypeError) as exc:
        raise UnstorableRecord(f"{type(exc).__name__}: {exc}") from exc
    return False


def _merge(record: FailureRecord, failed_at: datetime, sanitised: bool) -> bool:
    from .models import DeadLetter

    values = {
        "task_name": record.task_name,
        "args": record.args,
        "kwargs": record.kwargs,
        "symbols": _listed(record.symbols),
        "providers": _listed(record.provider_names()),
        "provider_failures": record.failures,
        "exception_class": record.exception_class,
        "exception_lineage": _listed(record.lineage()),
        "exception_message": record.exception_message,
        "traceback": record.traceback,
        "queue": record.queue,
        "worker": record.worker,
        "sanitised": sanitised,
        "origin": record.origin,
        "message": record.message,
        "arguments_known": record.arguments_known,
        "arguments_truncated": record.arguments_truncated,
        "arguments_size": record.arguments_size,
    }
    with transaction.atomic():
        row = DeadLetter.objects.select_for_update().filter(task_id=record.task_id).first()
        created = row is None
        if row is None:
            row = DeadLetter.objects.create(
                task_id=record.task_id,
                retries=record.retries,
                deliveries=record.deliveries,
                first_failure_at=failed_at,
                last_failure_at=failed_at,
                **values,
            )
        else:
            if failed_at < row.first_failure_at:
                for name, value in values.items():
                    setattr(row, name, value)
                row.first_failure_at = failed_at
            row.last_failure_at = max(row.last_failure_at, failed_at)
            row.retries = max(row.retries, record.retries)
            row.deliveries = max(row.deliveries, record.deliveries)
            row.save()
        if row.replay_of_id is None:
            _link_to_original(row, record)
    return created


def _listed(names: list[str]) -> str:
    """``[a, b]`` as ``,a,b,``: a containment filter on ``,a,`` then matches whole names only."""
    return "," + ",".join(names) + "," if names else ""


def _link_to_original(row: Any, record: FailureRecord) -> None:
    """When this failure is a replay that failed again, link it to the dead letter it replayed and
    mark that one ``failed again``."""
    from .models import DeadLetter

    originals = DeadLetter.objects.exclude(pk=row.pk).filter(replayed_as__isnull=True)
    original = (originals.filter(task_id=record.replay_of).first() if record.replay_of else None) or (
        originals.filter(replay_task_id=row.task_id).first()
    )
    if original is None:
        return
    row.replay_of = original
    row.save(update_fields=["replay_of"])
    mark_replay_outcome(
        original.task_id,
        succeeded=False,
        actor=f"worker:{record.worker}",
        detail=f"dead letter {row.pk} ({record.exception_class.rsplit('.', 1)[-1]})",
    )
