"""Container healthcheck of beat: exit 0 when its heartbeat is recent, 1 when stale or missing."""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from backend.monitoring.health import BEAT_MAX_AGE_SECONDS, check_beat


class Command(BaseCommand):
    help = (
        "Exit 0 when beat's heartbeat task ran within --max-age seconds, else exit 1. The heartbeat is "
        "sent by beat and run by a worker, so a stale one means beat, the high queue or the database is down."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--max-age",
            type=float,
            default=BEAT_MAX_AGE_SECONDS,
            help=f"Seconds the heartbeat may age (default {BEAT_MAX_AGE_SECONDS}).",
        )

    def handle(self, *args, **options):
        check = check_beat(timezone.now(), max_age=options["max_age"])
        if not check.ok:
            # CommandError exits with status 1 and one line on stderr, which docker shows in `inspect`.
            raise CommandError(f"beat heartbeat stale: {check.detail}")
        self.stdout.write(f"beat alive: {check.detail}")
