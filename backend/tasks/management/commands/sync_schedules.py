"""Create or repair the platform's periodic tasks in the database."""

from django.core.management.base import BaseCommand

from backend.tasks.schedules import sync_schedules


class Command(BaseCommand):
    help = "Create or repair the PeriodicTask rows beat reads (idempotent)."

    def handle(self, *args, **options):
        result = sync_schedules()
        self.stdout.write(f"schedules: {len(result.created)} created, {len(result.updated)} updated")
        for name in result.created:
            self.stdout.write(f"  created {name}")
        for name in result.updated:
            self.stdout.write(f"  updated {name}")
        for old in result.migrated:
            self.stdout.write(f"  rewrote legacy entry {old}")
        for name in result.removed:
            self.stdout.write(f"  removed {name} (maintenance: cleanup is the one cleanup)")
