"""Dead letters: every task that finally fails leaves one row an operator can read, replay or discard.

Capture is a ``task_failure`` signal handler (plus ``task_internal_error``, which Celery sends
instead when storing the failed result itself failed, as it does when the database is down).
Celery swallows exceptions raised by signal receivers, so a write the database refuses goes to a
fallback instead — a Redis list when Redis is the broker, an append-only JSON-lines file otherwise —
and ``flush_fallback`` moves it into the table later. Records merge on the task id, so recording or
flushing the same failure twice leaves one row.

The poison cap counts deliveries of each message (``delivery_guard``, entered by ``ReliableTask``):
a message whose worker died under it more than ``DEADLETTER_MAX_DELIVERIES`` times fails with
``PoisonMessageError`` instead of running, which acknowledges it and dead-letters it.

Secrets never leave this module unredacted: arguments, messages, tracebacks, the result rows
django-celery-results keeps and every log line (``RedactSecretsFilter``, wired in settings) pass
through ``redact_text``/``redact_value``. Nothing here imports models at module level: the logging
filter is loaded while Django configures logging, before the app registry is ready.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import socket
import time
import traceback as traceback_module
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from celery import signals
from celery.utils.saferepr import saferepr
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

REDACTED = "[redacted]"
PROVIDER_KEY_SETTINGS = ("ALPHA_VANTAGE_API_KEY", "COINGECKO_API_KEY", "COINMARKETCAP_API_KEY", "NEWSAPI_API_KEY")
FALLBACK_REDIS_KEY = "financehub:deadletters:fallback"
DELIVERY_REDIS_PREFIX = "financehub:deliveries:"
DELIVERY_COUNTER_TTL = 24 * 3600
FLUSH_BATCH = 500
# Shorter values than this are never treated as secrets by value: they would redact ordinary words.
MIN_SECRET_LENGTH = 6

# --- Redaction ------------------------------------------------------------------------------------
_SECRET_NAME = re.compile(r"key|token|secret|passw|pwd|credential|authorization", re.IGNORECASE)
_URL_USERINFO = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^:/@\s]*):(?P<secret>[^@/\s]+)@", re.IGNORECASE)
# name=value (query strings, keyword reprs) and 'name': 'value' / "name": "value" (dict reprs, JSON)
# where the name looks like a credential. KeyError: 'AAPL' has no quotes around its name, so it stays.
_NAMED_VALUE = re.compile(
    r"""(?P<head>(?:(?P<q>['"]))?(?P<name>[A-Za-z0-9_.-]*(?:key|token|secret|passw|pwd|signature)[A-Za-z0-9_.-]*)"""
    r"""(?(q)(?P=q)\s*[:=]|=)\s*['"]?)(?P<value>[^\s'"&,;)}\]\[]+)""",
    re.IGNORECASE,
)
_AUTH_HEADER = re.compile(
    r"(?P<head>authorization['\"]?\s*[:=]\s*['\"]?(?:bearer|basic|token)?\s*)(?P<value>[^\s'\",}]+)", re.I
)


def _configured_secrets() -> list[str]:
    """Values that must never be shown: provider keys and the passwords of the service URLs."""
    values = [str(getattr(settings, name, "") or "") for name in PROVIDER_KEY_SETTINGS]
    values.append(str(settings.DATABASES.get("default", {}).get("PASSWORD") or ""))
    for url_setting in ("REDIS_URL", "CELERY_BROKER_URL"):
        match = _URL_USERINFO.search(str(getattr(settings, url_setting, "") or ""))
        if match:
            values.append(match.group("secret"))
    # Longest first, so a key that contains another is replaced whole.
    return sorted({v for v in values if len(v) >= MIN_SECRET_LENGTH}, key=len, reverse=True)


def redact_text(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` with configured secret values, URL passwords and credential-named values replaced."""
    if not text:
        return text
    for secret in _configured_secrets() if secrets is None else secrets:
        text = text.replace(secret, REDACTED)
    text = _URL_USERINFO.sub(lambda m: f"{m.group('head')}:{REDACTED}@", text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group('head')}{REDACTED}", text)
    return _NAMED_VALUE.sub(_redact_named_value, text)


def _redact_named_value(match: re.Match[str]) -> str:
    if match.group("name").lower().endswith(("error", "exception")):
        return match.group(0)
    return f"{match.group('head')}{REDACTED}"


def redact_value(value: Any, secrets: list[str] | None = None) -> Any:
    """A JSON-ready copy of ``value`` with secrets redacted: credential-named keys lose their values."""
    secrets = _configured_secrets() if secrets is None else secrets
    if isinstance(value, dict):
        return {str(k): REDACTED if _SECRET_NAME.search(str(k)) else redact_value(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v, secrets) for v in value]
    if isinstance(value, str):
        return redact_text(value, secrets)
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact_text(saferepr(value, 500), secrets)


def scrub_exception(exc: BaseException | None) -> None:
    """Redact an exception's arguments in place, so whatever formats it later shows no secret."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        with contextlib.suppress(AttributeError, TypeError):
            exc.args = tuple(redact_value(a) if isinstance(a, str | dict | list | tuple) else a for a in exc.args)
        inner = getattr(exc, "exc", None)  # celery.exceptions.Retry wraps the real exception
        if isinstance(inner, BaseException):
            scrub_exception(inner)
        exc = exc.__cause__ or exc.__context__


class RedactSecretsFilter(logging.Filter):
    """Logging filter that redacts the message, its arguments and any traceback of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            secrets = _configured_secrets()
            record.msg = redact_text(record.getMessage(), secrets)
            record.args = None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = redact_text(record.exc_text, secrets)
            if record.stack_info:
                record.stack_info = redact_text(record.stack_info, secrets)
        except Exception:  # noqa: BLE001 - a logging filter must never stop a log line
            record.msg, record.args = "[log line dropped: redaction failed]", None
        return True


# --- Records --------------------------------------------------------------------------------------
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
    secrets = _configured_secrets()
    retries = int(getattr(request, "retries", 0) or 0)
    delivery_info = getattr(request, "delivery_info", None) or {}
    if deliveries is None:
        deliveries = max(1, current_deliveries(task_id, retries))
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
    from .models import DeadLetter

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


# --- Fallback -------------------------------------------------------------------------------------
_redis_clients: dict[int, Any] = {}


def uses_redis() -> bool:
    """Whether Redis is the broker (then it also holds the fallback list and delivery counters)."""
    return str(settings.CELERY_BROKER_URL).startswith(("redis://", "rediss://"))


def _redis() -> Any:
    """A Redis client for this process (never shared across a fork), with short timeouts."""
    import redis

    pid = os.getpid()
    if pid not in _redis_clients:
        _redis_clients.clear()
        _redis_clients[pid] = redis.Redis.from_url(
            settings.CELERY_BROKER_URL, socket_timeout=3, socket_connect_timeout=3
        )
    return _redis_clients[pid]


def fallback_file() -> Path:
    return Path(settings.DEADLETTER_FALLBACK_FILE)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[Any]:
    """The file opened for append and read, held under an exclusive lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_fallback(record: FailureRecord) -> str:
    """Keep ``record`` outside the database; returns where it went. Redis first when it is the broker."""
    line = record.to_json()
    if uses_redis():
        try:
            _redis().rpush(FALLBACK_REDIS_KEY, line)
            return f"redis list {FALLBACK_REDIS_KEY}"
        except Exception:  # noqa: BLE001 - Redis down too: the local file is the last resort
            logger.warning("dead letter fallback: Redis refused the record, using the local file", exc_info=True)
    path = fallback_file()
    with _locked(path) as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return str(path)


def pending_fallback() -> int:
    """How many records wait in the fallback (Redis list and file)."""
    count = 0
    if uses_redis():
        with contextlib.suppress(Exception):
            count += int(_redis().llen(FALLBACK_REDIS_KEY))
    path = fallback_file()
    if path.exists() and path.stat().st_size:
        with _locked(path) as handle:
            handle.seek(0)
            count += sum(1 for line in handle if line.strip())
    return count


@dataclass
class FlushResult:
    """What one flush did."""

    flushed: int = 0
    remaining: int = 0
    rejected: int = 0


def flush_fallback(*, dry_run: bool = False) -> FlushResult:
    """Move fallback records into the table; idempotent and safe to run from several processes.

    A record leaves the fallback only after the database took it, so a crash or an outage in the
    middle leaves the rest for the next flush. Called at the start of every dead-letter write, by
    the periodic heartbeat and by ``manage.py deadletters flush``.
    """
    result = FlushResult()
    if uses_redis():
        _flush_redis(result, dry_run)
    _flush_file(result, dry_run)
    if not dry_run:
        prune_delivery_counters()
    if result.flushed:
        logger.info("dead letter fallback: flushed %d records, %d remain", result.flushed, result.remaining)
    return result


def _flush_redis(result: FlushResult, dry_run: bool) -> None:
    client = _redis()
    items = client.lrange(FALLBACK_REDIS_KEY, 0, FLUSH_BATCH - 1)
    for raw in items:
        try:
            record = FailureRecord.from_json(raw)
        except (ValueError, TypeError):
            result.rejected += 1
            if not dry_run:
                logger.error("dead letter fallback: unreadable record in Redis moved aside")
                client.rpush(FALLBACK_REDIS_KEY + ":rejected", raw)
                client.lrem(FALLBACK_REDIS_KEY, 1, raw)
            continue
        if dry_run:
            result.flushed += 1
            continue
        try:
            apply_record(record)
        except Exception:  # noqa: BLE001 - the database is still away: keep the rest for the next flush
            break
        # LREM of the exact value, not LPOP: another flusher may already have taken the head.
        client.lrem(FALLBACK_REDIS_KEY, 1, raw)
        result.flushed += 1
    result.remaining += int(client.llen(FALLBACK_REDIS_KEY)) - (result.flushed if dry_run else 0)


def _flush_file(result: FlushResult, dry_run: bool) -> None:
    path = fallback_file()
    if not path.exists() or not path.stat().st_size:
        return
    with _locked(path) as handle:
        handle.seek(0)
        lines = [line for line in handle.read().splitlines() if line.strip()]
        records: list[tuple[str, FailureRecord]] = []
        torn: list[str] = []
        for line in lines:
            try:
                records.append((line, FailureRecord.from_json(line)))
            except (ValueError, TypeError):
                torn.append(line)
        result.rejected += len(torn)
        if dry_run:
            result.flushed += len(records)
            return
        if torn:
            # Torn lines from a crashed writer: set aside for a human, never retried forever.
            with path.with_name(path.name + ".rejected").open("a", encoding="utf-8") as rejected:
                rejected.writelines(line + "\n" for line in torn)
            logger.error("dead letter fallback: %d unreadable lines moved to %s.rejected", len(torn), path.name)
        kept: list[str] = []
        for position, (line, record) in enumerate(records):
            try:
                apply_record(record)
            except Exception:  # noqa: BLE001 - the database is still away: keep this and the rest
                kept = [line for line, _ in records[position:]]
                break
            result.flushed += 1
        result.remaining += len(kept)
        # Rewrite in place under the lock; writers wait on the same lock, so nothing is lost.
        handle.seek(0)
        handle.truncate()
        handle.writelines(line + "\n" for line in kept)
        handle.flush()
        os.fsync(handle.fileno())


def record_failure(record: FailureRecord) -> str:
    """Store ``record``: in the table when the database answers, else in the fallback. Never raises."""
    try:
        if pending_fallback():
            flush_fallback()
    except Exception:  # noqa: BLE001 - flushing is best effort here; the heartbeat flushes again
        logger.debug("dead letter fallback: flush before write failed", exc_info=True)
    try:
        apply_record(record)
        logger.info("dead letter recorded for %s[%s]: %s", record.task_name, record.task_id, record.exception_class)
        return "database"
    except Exception as exc:  # noqa: BLE001 - Celery would swallow it and the dead letter would be lost
        database_error = f"{type(exc).__name__}: {exc}"
    try:
        where = write_fallback(record)
    except Exception:  # noqa: BLE001 - last resort: the (redacted) record goes to the log
        logger.critical("dead letter could not be stored anywhere; record follows: %s", record.to_json())
        return "log"
    logger.warning(
        "dead letter for %s[%s] written to fallback %s (database: %s)",
        record.task_name,
        record.task_id,
        where,
        database_error,
    )
    return "fallback"


# --- Capture --------------------------------------------------------------------------------------
def _traceback_text(einfo: Any, exc: BaseException | None) -> str:
    text = getattr(einfo, "traceback", "") or ""
    if not text and exc is not None and exc.__traceback__ is not None:
        text = "".join(traceback_module.format_exception(type(exc), exc, exc.__traceback__))
    return str(text)


def _scrub_result_row(task_id: str) -> None:
    """Redact the django-celery-results row of ``task_id`` (Celery stored it before signalling)."""
    from django_celery_results.models import TaskResult

    row = TaskResult.objects.filter(task_id=task_id).first()
    if row is None:
        return
    secrets = _configured_secrets()
    changed = False
    for name in ("result", "traceback", "task_args", "task_kwargs", "meta"):
        value = getattr(row, name)
        if isinstance(value, str) and value:
            clean = redact_text(value, secrets)
            if clean != value:
                setattr(row, name, clean)
                changed = True
    if changed:
        row.save()


def _scrub_in_place(exc: BaseException | None, einfo: Any) -> None:
    """Redact the exception and formatted traceback Celery logs, stores and sends in events next."""
    scrub_exception(exc)
    if einfo is not None and isinstance(getattr(einfo, "traceback", None), str):
        with contextlib.suppress(AttributeError):
            einfo.traceback = redact_text(einfo.traceback)
    if einfo is not None:
        scrub_exception(getattr(einfo, "exception", None))


@signals.task_failure.connect(dispatch_uid="financehub.deadletters.task_failure")
def on_task_failure(
    sender: Any = None,
    task_id: str | None = None,
    exception: BaseException | None = None,
    args: Any = None,
    kwargs: Any = None,
    traceback: Any = None,
    einfo: Any = None,
    **_: Any,
) -> None:
    """Write the dead letter of a task that finally failed (never raises)."""
    try:
        if task_id is None or exception is None:
            return
        request = getattr(sender, "request", None)
        if getattr(request, "is_eager", False):
            return
        text = _traceback_text(einfo, exception)
        record = build_record(
            task_id=task_id,
            task_name=getattr(sender, "name", ""),
            exc=exception,
            args=args,
            kwargs=kwargs,
            traceback_text=text,
            request=request if getattr(request, "id", None) == task_id else None,
        )
        _scrub_in_place(exception, einfo)
        where = record_failure(record)
        if where == "database":
            with contextlib.suppress(Exception):
                _scrub_result_row(task_id)
    except Exception:  # noqa: BLE001 - a bug here must not crash the worker; it is logged loudly
        logger.exception("dead letter handler failed for task %s", task_id)


@signals.task_internal_error.connect(dispatch_uid="financehub.deadletters.task_internal_error")
def on_task_internal_error(
    sender: Any = None,
    task_id: str | None = None,
    args: Any = None,
    kwargs: Any = None,
    request: Any = None,
    exception: BaseException | None = None,
    einfo: Any = None,
    **_: Any,
) -> None:
    """Celery failed outside the task body (e.g. storing the result while the database is down).

    ``task_failure`` is then never sent for the task's own exception, so this records it: the
    original exception is found in the internal error's context chain.
    """
    try:
        if task_id is None or exception is None:
            return
        cause: BaseException = exception
        chain = exception
        seen: set[int] = set()
        while chain is not None and id(chain) not in seen:
            seen.add(id(chain))
            if chain.__traceback__ is not None and not _is_infrastructure_error(chain):
                cause = chain
                break
            chain = chain.__context__
        context = request if request is not None and not isinstance(request, dict) else None
        record = build_record(
            task_id=task_id,
            task_name=getattr(sender, "name", ""),
            exc=cause,
            args=args,
            kwargs=kwargs,
            traceback_text=_traceback_text(einfo, exception),
            request=context or _DictRequest(request if isinstance(request, dict) else {}),
        )
        _scrub_in_place(exception, einfo)
        record_failure(record)
    except Exception:  # noqa: BLE001 - a bug here must not crash the worker; it is logged loudly
        logger.exception("dead letter handler failed for task %s (internal error)", task_id)


class _DictRequest:
    """Attribute access over the raw request dict Celery passes to ``task_internal_error``."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        return self._data.get(name)


_INFRASTRUCTURE_MODULES = ("django.db", "sqlite3", "psycopg", "psycopg2", "redis", "kombu", "amqp")


def _is_infrastructure_error(exc: BaseException) -> bool:
    """A database, broker or OS error: Celery's own bookkeeping failing, not the task's cause."""
    module = type(exc).__module__ or ""
    return isinstance(exc, OSError) or module.startswith(_INFRASTRUCTURE_MODULES)


@signals.task_retry.connect(dispatch_uid="financehub.deadletters.task_retry")
def on_task_retry(request: Any = None, reason: Any = None, einfo: Any = None, **_: Any) -> None:
    """Redact the retry's exception before Celery logs it and sends the task-retried event."""
    try:
        _scrub_in_place(reason if isinstance(reason, BaseException) else None, einfo)
        task_id = getattr(request, "id", None)
        if task_id:
            _scrub_result_row(task_id)
    except Exception:  # noqa: BLE001 - redaction is best effort here; logs pass the filter anyway
        logger.debug("could not scrub the retry of %s", getattr(request, "id", None), exc_info=True)


@signals.before_task_publish.connect(dispatch_uid="financehub.deadletters.before_task_publish")
def redact_published_reprs(headers: dict[str, Any] | None = None, body: Any = None, **_: Any) -> None:
    """Redact the argument reprs a message carries for logs, events and result rows.

    Workers show ``argsrepr``/``kwargsrepr`` in the task-received event (Flower), in
    django-celery-results' ``task_args``/``task_kwargs`` and in logs; the real arguments are untouched.
    """
    if headers is None or not isinstance(body, tuple | list) or len(body) < 2:
        return
    try:
        secrets = _configured_secrets()
        headers["argsrepr"] = saferepr(redact_value(list(body[0] or []), secrets), 1024)
        headers["kwargsrepr"] = saferepr(redact_value(dict(body[1] or {}), secrets), 1024)
    except Exception:  # noqa: BLE001 - never stop a publish over its log repr
        headers["argsrepr"] = headers["kwargsrepr"] = REDACTED


@signals.task_success.connect(dispatch_uid="financehub.deadletters.task_success")
def on_task_success(sender: Any = None, **_: Any) -> None:
    """A replay that succeeded resolves the dead letter it came from."""
    request = getattr(sender, "request", None)
    original = _replay_header(request)
    if not original:
        return
    try:
        from .models import DeadLetter

        DeadLetter.objects.filter(task_id=original, state=DeadLetter.State.REPLAYED).update(
            state=DeadLetter.State.RESOLVED
        )
    except Exception:  # noqa: BLE001 - the row stays "replayed"; nothing is lost
        logger.warning("could not mark dead letter %s resolved", original, exc_info=True)


REPLAY_HEADER = "deadletter_replay_of"


def _replay_header(request: Any) -> str:
    if request is None:
        return ""
    value = getattr(request, REPLAY_HEADER, None)
    if not value:
        value = (getattr(request, "headers", None) or {}).get(REPLAY_HEADER)
    return str(value or "")


# --- Poison cap -----------------------------------------------------------------------------------
class PoisonMessageError(Exception):
    """The message was delivered more times than the cap allows: its worker died on it each time."""


def _delivery_dir() -> Path:
    return fallback_file().parent / "deliveries"


def _delivery_key(task_id: str, retries: int) -> str:
    # A retry is a new message under the same task id, so the count is per (id, retry number).
    return f"{task_id}:{retries}"


def _delivery_path(key: str) -> Path:
    return _delivery_dir() / hashlib.sha256(key.encode()).hexdigest()[:32]


def count_delivery(task_id: str, retries: int) -> int:
    """Count one more delivery of this message and return the total."""
    key = _delivery_key(task_id, retries)
    if uses_redis():
        client = _redis()
        with client.pipeline() as pipe:
            pipe.incr(DELIVERY_REDIS_PREFIX + key)
            pipe.expire(DELIVERY_REDIS_PREFIX + key, DELIVERY_COUNTER_TTL)
            count, _ = pipe.execute()
        return int(count)
    path = _delivery_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    # One byte appended per delivery: O_APPEND writes are atomic, the size is the count.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, b".")
        os.fsync(fd)
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def current_deliveries(task_id: str, retries: int) -> int:
    """Deliveries counted so far for this message (0 when unknown)."""
    key = _delivery_key(task_id, retries)
    try:
        if uses_redis():
            return int(_redis().get(DELIVERY_REDIS_PREFIX + key) or 0)
        path = _delivery_path(key)
        return path.stat().st_size if path.exists() else 0
    except Exception:  # noqa: BLE001 - an unknown count is reported as 0, never an error
        return 0


def clear_deliveries(task_id: str, retries: int) -> None:
    """Forget the count: the body returned or raised, so the worker did not die on this message."""
    key = _delivery_key(task_id, retries)
    if uses_redis():
        _redis().delete(DELIVERY_REDIS_PREFIX + key)
    else:
        _delivery_path(key).unlink(missing_ok=True)


def prune_delivery_counters(max_age: float = DELIVERY_COUNTER_TTL) -> None:
    """Drop file counters older than a day (Redis counters expire by themselves)."""
    folder = _delivery_dir()
    if not folder.is_dir():
        return
    cutoff = time.time() - max_age
    for path in folder.iterdir():
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < cutoff:
                path.unlink()


@contextlib.contextmanager
def delivery_guard(task: Any) -> Iterator[None]:
    """Count this delivery; refuse to run a message delivered more than the cap allows.

    ``PoisonMessageError`` is raised outside the task body, so autoretry never sees it: the task
    fails, its message is acknowledged and the failure handler writes the dead letter.
    """
    request = task.request
    cap = int(getattr(settings, "DEADLETTER_MAX_DELIVERIES", 3))
    if cap <= 0 or getattr(request, "is_eager", False) or getattr(request, "called_directly", True) or not request.id:
        yield
        return
    retries = int(request.retries or 0)
    try:
        count = count_delivery(request.id, retries)
    except Exception:  # noqa: BLE001 - a counter outage must not stop the work: run uncounted
        logger.warning("delivery counter unavailable for %s[%s]; running uncapped", task.name, request.id)
        count = 0
    if count > cap:
        raise PoisonMessageError(
            f"message delivered {count} times (cap {cap}): its worker died on each of the earlier "
            "deliveries; dead-lettered without running"
        )
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            clear_deliveries(request.id, retries)


# --- Operations -----------------------------------------------------------------------------------
class ReplayRefused(Exception):
    """This dead letter cannot be replayed (state, or redacted arguments)."""


def filter_dead_letters(
    queryset: Any = None,
    *,
    task: str | None = None,
    exception: str | None = None,
    provider: str | None = None,
    symbol: str | None = None,
    state: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Any:
    """The dead letters matching every given filter (the command's and admin's shared vocabulary)."""
    from .models import DeadLetter

    qs = DeadLetter.objects.all() if queryset is None else queryset
    if task:
        qs = qs.filter(task_name=task)
    if exception:
        # Either the dotted name or the bare class name.
        qs = qs.filter(exception_class=exception) | qs.filter(exception_class__endswith="." + exception)
    if provider:
        qs = qs.filter(provider=provider)
    if symbol:
        qs = qs.filter(symbols__contains=f",{symbol.upper()},")
    if state:
        qs = qs.filter(state=state)
    if since:
        qs = qs.filter(last_failure_at__gte=since)
    if until:
        qs = qs.filter(last_failure_at__lt=until)
    return qs


def _contains_redaction(value: Any) -> bool:
    return REDACTED in json.dumps(value, default=str)


def replay(dead_letter: Any, *, actor: str) -> str:
    """Re-send the original task with its original arguments; returns the new task id.

    The row is locked, the task sent, then the row marked ``replayed`` with the new id, who and
    when — all in one transaction, so a send that fails leaves the row open.
    """
    from uuid import uuid4

    from backend.core.celery import app

    from .models import DeadLetter

    with transaction.atomic():
        row = DeadLetter.objects.select_for_update().get(pk=dead_letter.pk)
        if row.state != DeadLetter.State.OPEN:
            raise ReplayRefused(f"dead letter {row.pk} is {row.state}, not open")
        if _contains_redaction(row.args) or _contains_redaction(row.kwargs):
            raise ReplayRefused(f"dead letter {row.pk} has redacted arguments; replaying would send {REDACTED}")
        new_id = str(uuid4())
        options: dict[str, Any] = {"task_id": new_id, "headers": {REPLAY_HEADER: row.task_id}}
        if row.queue:
            options["queue"] = row.queue
        app.send_task(row.task_name, args=list(row.args), kwargs=dict(row.kwargs), **options)
        row.state = DeadLetter.State.REPLAYED
        row.replay_task_id = new_id
        row.replayed_by = actor[:150]
        row.replayed_at = timezone.now()
        row.save(update_fields=["state", "replay_task_id", "replayed_by", "replayed_at"])
    logger.info("dead letter %s (%s[%s]) replayed by %s as %s", row.pk, row.task_name, row.task_id, actor, new_id)
    return new_id


def discard(dead_letter: Any, *, actor: str) -> bool:
    """Mark an open dead letter discarded, recording who and when; False when it was not open."""
    from .models import DeadLetter

    updated = DeadLetter.objects.filter(pk=dead_letter.pk, state=DeadLetter.State.OPEN).update(
        state=DeadLetter.State.DISCARDED, discarded_by=actor[:150], discarded_at=timezone.now()
    )
    if updated:
        logger.info(
            "dead letter %s (%s[%s]) discarded by %s", dead_letter.pk, dead_letter.task_name, dead_letter.task_id, actor
        )
    return bool(updated)


@dataclass
class BulkResult:
    """What a bulk replay or discard did."""

    done: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)


def replay_many(
    dead_letters: Iterable[Any],
    *,
    actor: str,
    rate: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> BulkResult:
    """Replay each dead letter, at most ``rate`` per second (``DEADLETTER_REPLAY_RATE``)."""
    rate = float(settings.DEADLETTER_REPLAY_RATE if rate is None else rate)
    interval = 1.0 / rate if rate > 0 else 0.0
    result = BulkResult()
    last_sent: float | None = None
    for row in dead_letters:
        if last_sent is not None:
            wait = interval - (time.monotonic() - last_sent)
            if wait > 0:
                sleep(wait)
        try:
            replay(row, actor=actor)
            result.done.append(row.pk)
            last_sent = time.monotonic()
        except ReplayRefused as exc:
            result.refused[row.pk] = str(exc)
    return result


def discard_many(dead_letters: Iterable[Any], *, actor: str) -> BulkResult:
    """Discard each open dead letter."""
    result = BulkResult()
    for row in dead_letters:
        if discard(row, actor=actor):
            result.done.append(row.pk)
        else:
            result.refused[row.pk] = f"dead letter {row.pk} is {row.state}, not open"
    return result
