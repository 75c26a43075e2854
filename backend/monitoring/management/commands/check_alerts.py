"""``manage.py check_alerts``: evaluate the alert conditions now and send what is due (cron, or by hand)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from backend.monitoring.alerts import check_and_notify


class Command(BaseCommand):
    help = "Check the alert conditions once and notify the webhook / ADMINS of new or resolved alerts."

    def handle(self, *args: object, **options: object) -> None:
        """Print what fires and what was sent, as JSON."""
        outcome = check_and_notify()
        self.stdout.write(json.dumps(outcome.as_dict(), indent=2))
