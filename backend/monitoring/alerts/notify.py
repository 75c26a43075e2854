"""Send what is newly firing or resolved: a Slack-compatible webhook and/or e-mail to ADMINS.

Rate limit: one message per alert key per ``ALERT_REPEAT_SECONDS`` while it keeps firing (a cache
entry that expires), and one "resolved" message when it stops. Messages carry counts, names of
tasks, assets, providers and queues, never arguments or exception messages, and pass the
deployment's secret redaction anyway.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import httpx
from django.conf import settings
from django.core.cache import cache
from django.core.mail import mail_admins
from django.utils import timezone

from backend.common.redaction import redact_text
from backend.core.secrets import configured_secrets

from .conditions import Alert, evaluate

logger = logging.getLogger(__name__)

FIRING_KEY = "financehub:alerts:firing"
SENT_PREFIX = "financehub:alerts:sent:"
LOCK_KEY = "financehub:alerts:lock"
WEBHOOK_TIMEOUT = 5.0


@dataclass(frozen=True)
class Outcome:
    """What one check found and sent."""

    firing: tuple[Alert, ...]
    sent: tuple[Alert, ...]
    resolved: tuple[str, ...]
    delivered: bool

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form (the management command prints it)."""
        return {
            "firing": [a.summary for a in self.firing],
            "sent": [a.key for a in self.sent],
            "resolved": list(self.resolved),
            "delivered": self.delivered,
        }


def check_and_notify(now: datetime | None = None) -> Outcome:
    """Evaluate every condition and send what is new or resolved (each firing alert once per repeat period)."""
    now = now or timezone.now()
    firing = evaluate(now)
    previous: dict[str, str] = cache.get(FIRING_KEY) or {}
    resolved = tuple(sorted(key for key in previous if key not in {a.key for a in firing}))
    due = tuple(a for a in firing if cache.add(SENT_PREFIX + a.key, now.timestamp(), settings.ALERT_REPEAT_SECONDS))
    cache.set(FIRING_KEY, {a.key: a.summary for a in firing}, timeout=None)
    for key in resolved:
        cache.delete(SENT_PREFIX + key)
    delivered = True
    if due or resolved:
        delivered = send(message(due, [previous[k] for k in resolved]))
        if not delivered:
            # Nothing went out: let the next check try these again instead of waiting a repeat period.
            cache.delete_many([SENT_PREFIX + a.key for a in due])
    return Outcome(tuple(firing), due, resolved, delivered)


def check_once_per_interval(now: datetime | None = None) -> Outcome | None:
    """``check_and_notify`` unless another process checked within the interval (every worker calls this).

    A worker with no channel configured does not check at all: it could only mark alerts as sent
    that a worker with a channel would then hold back.
    """
    if not channels():
        return None
    if not cache.add(LOCK_KEY, socket.gethostname(), max(1, int(settings.ALERT_CHECK_SECONDS) - 1)):
        return None
    return check_and_notify(now)


def message(alerts: tuple[Alert, ...] | list[Alert], resolved: list[str]) -> str:
    """The text of one notification: firing alerts first, then what resolved."""
    lines = [f"FinanceHub: {len(alerts)} alert(s) firing, {len(resolved)} resolved"]
    lines += [f"- [{a.severity}] {a.summary}" for a in alerts]
    lines += [f"- [resolved] {summary}" for summary in resolved]
    return redact_text("\n".join(lines), configured_secrets())


def channels() -> list[Callable[[str], bool]]:
    """The configured ways out: the webhook, e-mail to ADMINS."""
    found: list[Callable[[str], bool]] = []
    if settings.ALERT_WEBHOOK_URL:
        found.append(_post_webhook)
    if settings.ALERT_EMAIL and settings.ADMINS:
        found.append(_mail)
    return found


def send(text: str) -> bool:
    """Deliver ``text`` to every configured channel; True when at least one took it (or none is configured)."""
    ways = channels()
    if not ways:
        logger.warning("alert not sent (no ALERT_WEBHOOK_URL, no ALERT_EMAIL): %s", text.splitlines()[0])
        return True
    return any([way(text) for way in ways])


def _post_webhook(text: str) -> bool:
    # Slack's incoming-webhook body; Mattermost, Rocket.Chat and Teams' Slack-compatible hooks read it too.
    started = time.monotonic()
    try:
        response = httpx.post(settings.ALERT_WEBHOOK_URL, json={"text": text}, timeout=WEBHOOK_TIMEOUT)
    except httpx.HTTPError as exc:
        logger.warning("alert webhook unreachable (%s)", type(exc).__name__)  # the URL is a secret: not logged
        return False
    if response.is_error:
        logger.warning("alert webhook answered HTTP %d", response.status_code)
        return False
    logger.info("alert sent to the webhook in %.2f s", time.monotonic() - started)
    return True


def _mail(text: str) -> bool:
    try:
        mail_admins(text.splitlines()[0], text, fail_silently=False)
    except (OSError, ValueError) as exc:  # smtplib's errors are OSErrors
        logger.warning("alert e-mail not sent (%s)", type(exc).__name__)
        return False
    return True
