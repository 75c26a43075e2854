"""Redaction with this deployment's secrets: ``backend.common.redaction`` fed the values settings name.

Every task message's argument reprs (sent and published), every retried exception Celery is about to
log or send in an event, and everything a dead letter stores (``backend.deadletters``) pass through
here first; ``redaction_signals`` applies it to what Celery publishes and logs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from celery.utils.saferepr import saferepr

from backend.common import redaction
from backend.common.redaction import REDACTED
from backend.core.secrets import configured_secrets

__all__ = [
    "REDACTED",
    "configured_secrets",
    "redacted_by_this_send",
    "redacted_repr",
    "redact_text",
    "repr_headers",
    "redact_value",
    "scrub_exception",
    "scrub_einfo",
    "scrub_result_row",
    "send_with_redacted_reprs",
]

# How long an argsrepr/kwargsrepr is: what Flower, task events and result rows show of the arguments.
ARGS_REPR_LIMIT = 1024


def _bounded_repr(value: Any) -> str:
    return saferepr(value, redaction.REPR_LIMIT)


def redact_text(text: str, secrets: Sequence[str] | None = None) -> str:
    """``text`` with configured secret values, URL passwords and credential-named values replaced."""
    return redaction.redact_text(text, configured_secrets() if secrets is None else secrets)


def redact_value(value: Any, secrets: Sequence[str] | None = None) -> Any:
    """A JSON-ready copy of ``value`` with secrets redacted: credential-named keys lose their values."""
    return redaction.redact_value(value, configured_secrets() if secrets is None else secrets, repr_of=_bounded_repr)


def redacted_repr(value: Any, secrets: Sequence[str] | None = None, limit: int = ARGS_REPR_LIMIT) -> str:
    """The redacted repr of ``value`` cut at ``limit`` characters, redacting only the part it shows."""
    secrets = configured_secrets() if secrets is None else secrets
    return saferepr(redaction.redact_shown(value, secrets, budget=limit, repr_of=_bounded_repr), limit)


def repr_headers(args: Any, kwargs: Any) -> tuple[tuple[str, Any], ...]:
    """The two repr headers of a message and what each shows: the positional arguments as a list, the
    keyword arguments as a dict."""
    return (("argsrepr", list(args or ())), ("kwargsrepr", dict(kwargs or {})))


# The reprs the send running in this context redacted itself; the publish signal keeps those as they are.
_redacted_by_send: ContextVar[tuple[str, ...]] = ContextVar("redacted_by_send", default=())


@contextmanager
def send_with_redacted_reprs(args: Any, kwargs: Any, options: dict[str, Any]) -> Iterator[None]:
    """Put redacted ``argsrepr``/``kwargsrepr`` in the send ``options`` where the caller gave none.

    They travel in the task-sent event, which the publish signal cannot reach; inside this context
    the signal recognises them and does not redact the same arguments a second time.
    """
    made = []
    for key, value in repr_headers(args, kwargs):
        if options.get(key) is None:
            options[key] = redacted_repr(value)
            made.append(options[key])
    token = _redacted_by_send.set(tuple(made))
    try:
        yield
    finally:
        _redacted_by_send.reset(token)


def redacted_by_this_send(text: object) -> bool:
    """Whether ``text`` is a repr the send running in this context redacted itself (the same object)."""
    return any(text is made for made in _redacted_by_send.get())


def scrub_exception(exc: BaseException | None) -> None:
    """Redact an exception's arguments in place, so whatever formats it later shows no secret."""
    redaction.scrub_exception(exc, configured_secrets())


def scrub_einfo(exc: BaseException | None, einfo: Any) -> None:
    """Redact the exception and formatted traceback Celery logs, stores and sends in events next."""
    scrub_exception(exc)
    if einfo is not None and isinstance(getattr(einfo, "traceback", None), str):
        with contextlib.suppress(AttributeError):
            einfo.traceback = redact_text(einfo.traceback)
    if einfo is not None:
        scrub_exception(getattr(einfo, "exception", None))


def scrub_result_row(task_id: str) -> None:
    """Redact the django-celery-results row of ``task_id`` (Celery stored it before signalling)."""
    from django_celery_results.models import TaskResult

    row = TaskResult.objects.filter(task_id=task_id).first()
    if row is None:
        return
    secrets = configured_secrets()
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
