"""Dead-letter records: what one failure looks like (redacted, JSON-ready) and how it becomes a row.

A ``FailureRecord`` travels through the fallback as one JSON line; ``apply_record`` merges it into
the table on the task id, so recording or flushing the same failure twice leaves one row.
"""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import poison
from .secrets import configured_secrets, redact_text, redact_value

_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9.\-]{0,19}$")
_ASSET_CLASSES = {"stock", "crypto", "etf", "forex", "index"}


def symbols_in(args: Any, kwargs: Any) -> list[str]:
    """Upper-case symbol-like strings in the arguments (lists of symbols, a ``symbol`` keyword)."""
    found: list[str] = []

    def walk(value: Any, depth: int = 0) -> None:
        if depth > 3 or len(found) >= 200:
            return
        if isinstance(value, str):
            if _SYMBOL.match(value) and value.lower() not in _ASSET_CLASSES and value not in found:
                found.append(value)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item, depth + 1)
        elif isinstance(value, dict):
            for key, item in value.items():
                if "symbol" in str(key).lower() or "asset" in str(key).lower():
                    walk(item, depth + 1)

    walk(args)
    walk(kwargs)
    return found


def exception_class_name(exc: BaseException) -> str:
    """Dotted class name of ``exc`` (builtins by bare name), seeing through Celery's wrappers."""
    name = getattr(exc, "exc_cls_name", None)  # celery.utils.serialization.UnpickleableExceptionWrapper
    if name:
        return f"{getattr(exc, 'exc_module', '')}.{name}".lstrip(".")
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


@dataclass
class FailureRecord:
    """Everything a dead letter row holds, JSON-ready and already redacted."""

    task_id: str
    task_name: str
    exception_class: str
    failed_at: str  # ISO 8601, UTC
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    symbols: list[str] = field(default_factory=list)
    provider: str = ""
    exception_message: str = ""
    traceback: str = ""
    retries: int = 0
    deliveries: int = 1
    queue: str = ""
    worker: str = ""

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True, default=str)

    @classmethod
    def from_json(cls, raw: str | bytes) -> FailureRecord:
        data = json.loads(raw)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def build_record(
    *,
    task_id: str,
    task_name: str,
    exc: BaseException,
    args: Any,
    kwargs: Any,
    traceback_text: str = "",
    request: Any = None,
    deliveries: int | None = None,
) -> FailureRecord:
    """A redacted record of one failure; ``request`` is the task's request context when known."""
    secrets = configured_secrets()
    retries = int(getattr(request, "retries", 0) or 0)
    delivery_info = getattr(request, "delivery_info", None) or {}
    if deliveries is None:
        deliveries = max(1, poison.current_deliveries(task_id, retries))
    return FailureRecord(
        task_id=str(task_id),
        task_name=str(task_name or getattr(request, "task", "") or "unknown"),
        exception_class=exception_class_name(exc),
        exception_message=redact_text(str(exc), secrets)[:10000],
        traceback=redact_text(traceback_text or "", secrets)[:50000],
        failed_at=timezone.now().isoformat(),
        args=redact_value(list(args or []), secrets),
        kwargs=redact_value(dict(kwargs or {}), secrets),
        symbols=symbols_in(args, kwargs),
        provider=str(getattr(exc, "provider", "") or "")[:50],
        retries=retries,
        deliveries=deliveries,
        queue=str(delivery_info.get("routing_key") or delivery_info.get("exchange") or "")[:100],
        worker=str(getattr(request, "hostname", "") or socket.gethostname())[:255],
    )


def apply_record(record: FailureRecord) -> bool:
    """Upsert ``record`` into the table; True when it created the row.

    The merge is order-independent, so applying a record twice, or two records of one task in
    either order, gives the same row: failure times widen, counters take the maximum, and the
    exception details come from the earliest failure (the cause, not a later echo of it).
    """
    from ..models import DeadLetter

    failed_at = datetime.fromisoformat(record.failed_at)
    fields = {
        "task_name": record.task_name,
        "args": record.args,
        "kwargs": record.kwargs,
        "symbols": "," + ",".join(record.symbols) + "," if record.symbols else "",
        "provider": record.provider,
        "exception_class": record.exception_class,
        "exception_message": record.exception_message,
        "traceback": record.traceback,
        "queue": record.queue,
        "worker": record.worker,
    }
    for attempt in range(2):
        try:
            with transaction.atomic():
                row = DeadLetter.objects.select_for_update().filter(task_id=record.task_id).first()
                if row is None:
                    DeadLetter.objects.create(
                        task_id=record.task_id,
                        retries=record.retries,
                        deliveries=record.deliveries,
                        first_failure_at=failed_at,
                        last_failure_at=failed_at,
                        **fields,
                    )
                    return True
                if failed_at < row.first_failure_at:
                    for name, value in fields.items():
                        setattr(row, name, value)
                    row.first_failure_at = failed_at
                row.last_failure_at = max(row.last_failure_at, failed_at)
                row.retries = max(row.retries, record.retries)
                row.deliveries = max(row.deliveries, record.deliveries)
                row.save()
                return False
        except IntegrityError:
            # Two processes created the same task's row at once: the second merges into it.
            if attempt:
                raise
    return False
