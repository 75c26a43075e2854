"""A message the worker's consumer discards, as a dead-letter record: the raw message, the reason, the queue.

Celery's consumer drops four kinds of message before any task runs them, with a log line only: a task
name no worker here has registered (a rolling deploy, a renamed task), content it refuses to decode
(a pickle body), a body it cannot decode (not JSON), and a message that is no task message at all (no
``task`` header). ``consumer`` catches each of them; this module turns one into a ``FailureRecord``.

The record keeps the message as it arrived — headers, content type and encoding, delivery info and
the body (binary bodies escaped) — redacted and cut to ``DEADLETTER_KEEP_CHARS``. Only an unregistered
task's JSON body is decoded, into the arguments a replay re-sends once a worker has the task; every
other discarded message is kept for reading and discarding, never decoded further (a pickle body is
exactly what must never be unpickled).
"""

from __future__ import annotations

import codecs
import hashlib
import json
import socket
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from django.utils import timezone

from backend.tasks.secrets import configured_secrets, redact_text, redact_value

from .bounds import bounded, bounded_text, keep_chars
from .records import (
    MESSAGE_LIMIT,
    REPLAY_HEADER,
    FailureRecord,
    bounded_arguments,
    exception_class_name,
    exception_lineage,
    symbols_in,
)

# DeadLetter.Origin values (the model is not imported here: the package loads while Django sets up).
UNREGISTERED = "unregistered"
REJECTED = "rejected"
UNDECODABLE = "undecodable"
UNKNOWN = "unknown"

JSON_CONTENT_TYPE = "application/json"


class NotATaskMessage(Exception):
    """The message names no task (no ``task`` header, no task in its body): Celery cannot run it."""


def discarded_record(
    message: Any, *, origin: str, exc: BaseException, task_name: str = "", task_id: str = "", worker: str = ""
) -> FailureRecord:
    """The dead-letter record of ``message``, discarded by the consumer for ``exc``."""
    secrets = configured_secrets()
    headers = _headers(message)
    raw = _raw_body(message)
    name = str(task_name or headers.get("task") or "")[:200]
    delivery_info = getattr(message, "delivery_info", None) or {}
    queue = str(delivery_info.get("routing_key") or delivery_info.get("exchange") or "")[:100]
    decoded = _arguments(message, raw) if origin == UNREGISTERED and name else None
    args, kwargs = decoded or ([], {})
    arguments = bounded_arguments(args, kwargs, secrets)
    return FailureRecord(
        task_id=str(task_id or headers.get("id") or _derived_id(message, raw))[:255],
        task_name=name,
        origin=origin,
        exception_class=exception_class_name(exc),
        exception_lineage=exception_lineage(exc),
        exception_message=redact_text(_reason(origin, exc, name, queue), secrets)[:MESSAGE_LIMIT],
        traceback=redact_text(_traceback_text(exc), secrets)[:MESSAGE_LIMIT],
        failed_at=timezone.now().isoformat(),
        args=arguments.value["args"],
        kwargs=arguments.value["kwargs"],
        arguments_known=decoded is not None,
        arguments_truncated=arguments.truncated,
        arguments_size=arguments.size if decoded is not None else 0,
        symbols=symbols_in(args, kwargs),
        queue=queue,
        worker=str(worker or socket.gethostname())[:255],
        replay_of=str(headers.get(REPLAY_HEADER) or "")[:255],
        message=raw_message(message, headers, raw, secrets),
    )


def raw_message(message: Any, headers: Mapping[str, Any], raw: bytes, secrets: Sequence[str]) -> dict[str, Any]:
    """The message as it arrived, redacted and bounded, JSON-ready."""
    limit = keep_chars()
    text, body_format = _body_text(raw)
    # Redact at most twice what is kept: a huge body costs a bounded redaction, and a secret cut in
    # half at that point lies beyond what is kept.
    body, body_cut = bounded_text(redact_text(text[: 2 * limit], secrets), limit)
    kept_headers = bounded(redact_value(dict(headers), secrets), limit)
    delivery_info = getattr(message, "delivery_info", None) or {}
    return {
        "content_type": str(getattr(message, "content_type", "") or ""),
        "content_encoding": str(getattr(message, "content_encoding", "") or ""),
        "headers": kept_headers.value,
        "headers_truncated": kept_headers.truncated,
        "delivery_info": {key: str(delivery_info.get(key) or "") for key in ("exchange", "routing_key")},
        "body": body,
        "body_format": body_format,
        "body_bytes": len(raw),
        "body_truncated": body_cut or len(text) > 2 * limit,
    }


def _headers(message: Any) -> dict[str, Any]:
    headers = getattr(message, "headers", None)
    return dict(headers) if isinstance(headers, Mapping) else {}


def _raw_body(message: Any) -> bytes:
    body = getattr(message, "body", b"")
    if isinstance(body, bytes):
        return body
    return str(body or "").encode("utf-8", errors="surrogatepass")


def _body_text(raw: bytes) -> tuple[str, str]:
    """The body as text: UTF-8 as it is, anything else (or text holding NUL) as escaped bytes."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and "\x00" not in text:
        return text, "text"
    return codecs.escape_encode(raw)[0].decode("ascii"), "escaped bytes"


def _arguments(message: Any, raw: bytes) -> tuple[list[Any], dict[str, Any]] | None:
    """The (args, kwargs) of a JSON task message (protocol 2 or 1), or None when it holds no such pair."""
    if str(getattr(message, "content_type", "") or "") != JSON_CONTENT_TYPE:
        return None
    try:
        body = json.loads(raw.decode(str(getattr(message, "content_encoding", "") or "utf-8")))
    except (ValueError, LookupError):
        return None
    if isinstance(body, list) and len(body) >= 2:  # protocol 2: [args, kwargs, embed]
        args, kwargs = body[0], body[1]
    elif isinstance(body, dict):  # protocol 1: the whole task in the body
        args, kwargs = body.get("args", []), body.get("kwargs", {})
    else:
        return None
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        return None
    return args, kwargs


def _derived_id(message: Any, raw: bytes) -> str:
    """An id for a message that carries none, the same for each delivery of that one message.

    The broker's delivery tag is part of it where it names the message (Redis: a UUID per publish), so
    two identical messages stay two dead letters.
    """
    tag = getattr(message, "delivery_tag", None)
    digest = hashlib.sha256()
    digest.update(str(getattr(message, "content_type", "")).encode())
    digest.update(raw)
    if isinstance(tag, str):
        digest.update(tag.encode())
    return f"message-{digest.hexdigest()[:32]}"


def _reason(origin: str, exc: BaseException, name: str, queue: str) -> str:
    on_queue = f" on queue {queue}" if queue else ""
    if origin == UNREGISTERED:
        return (
            f"Received unregistered task {name!r}{on_queue}: the worker has no task of that name "
            "(a rolling deploy, or a renamed task). Replay it once a worker that has the task consumes the queue."
        )
    if origin == REJECTED:
        return f"Message for task {name or '(none)'!r}{on_queue} rejected: {type(exc).__name__}: {exc}"
    if origin == UNDECODABLE:
        return f"Can't decode message body{on_queue}: {type(exc).__name__}: {exc}"
    return f"Received and deleted unknown message{on_queue}: no task header, no task in the body."


def _traceback_text(exc: BaseException) -> str:
    if exc.__traceback__ is None:
        return ""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
