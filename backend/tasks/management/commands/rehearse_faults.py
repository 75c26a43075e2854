"""Rehearse a provider outage on the demo stack: the simulated provider fails for a while."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from redis.exceptions import RedisError

from backend.tasks import rehearsal


class Command(BaseCommand):
    help = (
        "Make the simulated provider fail a share of its calls for some minutes, in every worker, to see "
        "retries, dead letters, Replay and Discard on the demo stack. Without options: show the state."
    )

    def add_arguments(self, parser):
        parser.add_argument("--rate", type=float, default=None, help="Share of calls that fail, above 0 up to 1.")
        parser.add_argument("--minutes", type=float, default=10.0, help="How long the faults last (default 10).")
        parser.add_argument("--off", action="store_true", help="Stop the faults now.")

    def handle(self, *args, **options):
        try:
            self._handle(options)
        except (RedisError, DatabaseError) as exc:
            # The state lives in the shared cache: Redis, or the database's cache table (make run creates it).
            raise CommandError(f"the shared cache is unavailable ({type(exc).__name__}: {exc})") from None

    def _handle(self, options) -> None:
        if options["off"]:
            stopped = rehearsal.stop()
            self.stdout.write("fault rehearsal stopped" if stopped else "no fault rehearsal was running")
            return
        if options["rate"] is not None:
            if settings.MARKET_DATA_MODE != "simulated":
                # Only the offline provider rehearses; real and fake providers would never see it.
                raise CommandError(
                    f"MARKET_DATA_MODE is {settings.MARKET_DATA_MODE}: fault rehearsal needs the simulated "
                    "provider (the fake provider server has its own faults)"
                )
            try:
                running = rehearsal.start(options["rate"], options["minutes"])
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"fault rehearsal on: {running.describe()} (rehearse_faults --off ends it)")
            return
        running = rehearsal.current()
        self.stdout.write(f"fault rehearsal on: {running.describe()}" if running else "no fault rehearsal running")
