"""The built-in notifier: the alert conditions of deploy/prometheus/alerts.yml, checked without Prometheus.

``conditions.evaluate`` reads the platform's state and returns what is wrong now; ``notify`` sends
what is new (or resolved) to a Slack-compatible webhook and/or ADMINS by e-mail, at most once per
``ALERT_REPEAT_SECONDS`` per alert; ``watchdog`` runs the check in every worker (one at a time),
so a silent beat is noticed too; ``python backend/manage.py check_alerts`` runs it once.
"""

from .notify import check_and_notify

__all__ = ["check_and_notify"]
