"""Load the demo universe (asset types and assets) from its JSON data file."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from backend.market.services import load_assets


class Command(BaseCommand):
    help = "Create or update assets from a JSON data file (default: the demo universe)."

    def add_arguments(self, parser):
        parser.add_argument("--file", type=Path, default=None, help="JSON file; defaults to DEMO_ASSETS_FILE.")

    def handle(self, *args, **options):
        path = options["file"] or settings.DEMO_ASSETS_FILE
        if not path.exists():
            raise CommandError(f"no such file: {path}")
        result = load_assets(path)
        for error in result.errors:
            self.stderr.write(f"refused {error}")
        self.stdout.write(f"assets: {result.created} created, {result.updated} updated, {len(result.errors)} refused")
        if result.errors:
            raise CommandError(f"{len(result.errors)} asset(s) refused")
