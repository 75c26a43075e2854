"""The Celery receivers that redact what tasks publish and retry, before Celery logs or sends it.

Connected when ``TasksConfig.ready`` imports this module; the redaction itself is ``secrets``.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import signals

from .secrets import (
    REDACTED,
    configured_secrets,
    redacted_by_this_send,
    redacted_repr,
    repr_headers,
    scrub_einfo,
    scrub_result_row,
)

logger = logging.getLogger(__name__)


@signals.task_retry.connect(dispatch_uid="financehub.secrets.task_retry")
def on_task_retry(request: Any = None, reason: Any = None, einfo: Any = None, **_: Any) -> None:
    """Redact the retry's exception before Celery logs it and sends the task-retried event."""
    try:
        scrub_einfo(reason if isinstance(reason, BaseException) else None, einfo)
        task_id = getattr(request, "id", None)
        if task_id:
            scrub_result_row(task_id)
    except Exception:  # noqa: BLE001 - redaction is best effort here; logs pass the filter anyway
        logger.debug("could not scrub the retry of %s", getattr(request, "id", None), exc_info=True)


@signals.before_task_publish.connect(dispatch_uid="financehub.secrets.before_task_publish")
def redact_published_reprs(headers: dict[str, Any] | None = None, body: Any = None, **_: Any) -> None:
    """Redact the argument reprs a message carries for logs, events and result rows.

    Workers show ``argsrepr``/``kwargsrepr`` in the task-received event (Flower), in
    django-celery-results' ``task_args``/``task_kwargs`` and in logs; the real arguments are untouched.
    Reprs the send redacted itself (``send_with_redacted_reprs``) are kept, not redacted again.
    """
    if headers is None or not isinstance(body, tuple | list) or len(body) < 2:
        return
    try:
        secrets = configured_secrets()
        for key, value in repr_headers(body[0], body[1]):
            if not redacted_by_this_send(headers.get(key)):
                headers[key] = redacted_repr(value, secrets)
    except Exception:  # noqa: BLE001 - never stop a publish over its log repr
        headers["argsrepr"] = headers["kwargsrepr"] = REDACTED
