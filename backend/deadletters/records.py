"""Dead-letter records: what one failure looks like, redacted and JSON-ready.

A ``FailureRecord`` is built in the failing worker and travels through the fallback as one JSON
line; ``rows.apply_record`` merges it into the table. Besides the arguments it names every
provider that failed and why (``AllProvidersFailedError.failures``), the exception's lineage (its
class and bases, so a filter on a base class finds subclasses) and the dead letter whose replay
this failure is, when it is one.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from backend.tasks.log_fields import symbols_in
from backend.tasks.secrets import configured_secrets, redact_text, redact_value

from . import poison
from .bounds import Bounded, bounded

# The header a replay is sent with: the task id of the dead letter it replays.
REPLAY_HEADER = "deadletter_replay_of"
MESSAGE_LIMIT = 10_000
TRACEBACK_LIMIT = 50_000
FAILURE_MESSAGE_LIMIT = 500


def exception_class_name(exc: BaseException) -> str:
    """Dotted class name of ``exc`` (builtins too: ``builtins.TypeError``), seeing through Celery's wrappers."""
    name = getattr(exc, "exc_cls_name", None)  # celery.utils.serialization.UnpickleableExceptionWrapper
    if name:
        return f"{getattr(exc, 'exc_module', '') or 'builtins'}.{name}"
    return _dotted(type(exc))


def exception_lineage(exc: BaseException) -> list[str]:
    """Dotted names of the exception's class and its bases, most specific first (``object`` left out)."""
    if getattr(exc, "exc_cls_name", None):
        return [exception_class_name(exc)]  # only the name survived serialisation, not the class
    return [_dotted(cls) for cls in type(exc).__mro__ if cls is not object]


def _dotted(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what it wraps (Celery's ``Retry.exc``) and its causes, each once."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        inner = getattr(current, "exc", None)
        pending.extend([inner if isinstance(inner, BaseException) else None, current.__cause__, current.__context__])


def _part(failure: Any, name: str) -> str:
    value = failure.get(name) if isinstance(failure, Mapping) else getattr(failure, name, "")
    return str(value or "")


def provider_failures(exc: BaseException, secrets: Sequence[str]) -> list[dict[str, str]]:
    """Every provider that failed and why: the chain's ``failures`` when it names them, else the one
    provider the exception names. Messages are redacted and capped."""
    for candidate in _causes(exc):
        failures = getattr(candidate, "failures", None)
        if failures:
            return [
                {
                    "provider": _part(f, "provider")[:50],
                    "error": _part(f, "error")[:100],
                    "message": redact_text(_part(f, "message"), secrets)[:FAILURE_MESSAGE_LIMIT],
                }
                for f in failures
            ]
        provider = str(getattr(candidate, "provider", "") or "")
        if provider:
            message = redact_text(str(candidate), secrets)[:FAILURE_MESSAGE_LIMIT]
            return [{"provider": provider[:50], "error": type(candidate).__name__, "message": message}]
    return []


def replay_header(request: Any) -> str:
    """The task id of the dead letter this run replays, from the message's headers ('' if none)."""
    if request is None:
        return ""
    value = getattr(request, REPLAY_HEADER, None)
    if not value:
        headers = getattr(request, "headers", None)
        value = headers.get(REPLAY_HEADER) if isinstance(headers, Mapping) else None
    return str(value or "")


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
    providers: list[str] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    exception_lineage: list[str] = field(default_factory=list)
    exception_message: str = ""
    traceback: str = ""
    retries: int = 0
    deliveries: int = 1
    queue: str = ""
    worker: str = ""
    replay_of: str = ""  # task id of the dead letter this failure replayed
    provider: str = ""  # records written before ``providers`` existed name one provider here
    origin: str = "task"  # DeadLetter.Origin: a task that failed, or a message the consumer discarded
    message: dict[str, Any] = field(default_factory=dict)  # a discarded message as it arrived (``wire``)
    arguments_known: bool = True  # False: the message could not be decoded, there is nothing to re-send
    arguments_truncated: bool = False  # the arguments were cut to DEADLETTER_KEEP_CHARS
    arguments_size: int = 0  # characters of the arguments as JSON before any cut

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True, default=str)

    @classmethod
    def from_json(cls, raw: str | bytes) -> FailureRecord:
        data = json.loads(raw)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def provider_names(self) -> list[str]:
        """The providers that failed, in order, each once (older records: the one they named)."""
        names = [*self.providers, *(f.get("provider", "") for f in self.failures), self.provider]
        return list(dict.fromkeys(n for n in names if n))

    def lineage(self) -> list[str]:
        """The exception's lineage, or just its class for records that did not carry one."""
        return self.exception_lineage or [self.exception_class]


def bounded_arguments(args: Any, kwargs: Any, secrets: Sequence[str]) -> Bounded:
    """The arguments redacted and cut to ``DEADLETTER_KEEP_CHARS`` as ``{"args": [...], "kwargs": {...}}``.

    Both keys survive any cut (the larger part shrinks first), so a replay still calls the task with
    every keyword it had.
    """
    value = {"args": redact_value(list(args or []), secrets), "kwargs": redact_value(dict(kwargs or {}), secrets)}
    cut = bounded(value)
    kept = {"args": list(cut.value.get("args", [])), "kwargs": dict(cut.value.get("kwargs", {}))}
    return Bounded(kept, cut.truncated, cut.size)


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
    failures = provider_failures(exc, secrets)
    arguments = bounded_arguments(args, kwargs, secrets)
    return FailureRecord(
        task_id=str(task_id),
        task_name=str(task_name or getattr(request, "task", "") or "unknown"),
        exception_class=exception_class_name(exc),
        exception_lineage=exception_lineage(exc),
        exception_message=redact_text(str(exc), secrets)[:MESSAGE_LIMIT],
        traceback=redact_text(traceback_text or "", secrets)[:TRACEBACK_LIMIT],
        failed_at=timezone.now().isoformat(),
        args=arguments.value["args"],
        kwargs=arguments.value["kwargs"],
        arguments_truncated=arguments.truncated,
        arguments_size=arguments.size,
        symbols=symbols_in(args, kwargs),
        providers=list(dict.fromkeys(f["provider"] for f in failures if f["provider"])),
        failures=failures,
        retries=retries,
        deliveries=deliveries,
        queue=str(delivery_info.get("routing_key") or delivery_info.get("exchange") or "")[:100],
        worker=str(getattr(request, "hostname", "") or socket.gethostname())[:255],
        replay_of=replay_header(request)[:255],
    )
