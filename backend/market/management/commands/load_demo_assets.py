"""Add assets (and asset types) from a JSON data file; ``--update`` also overwrites existing rows."""

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from backend.common.logsafe import escape
from backend.market.demo import load_assets
from backend.market.models import Asset, AssetType
from backend.market.symbols import InvalidInputError


class Command(BaseCommand):
    help = (
        "Create the assets of a JSON data file (default: the demo universe) that are not in the database yet; "
        "existing assets are kept as they are unless --update is given."
    )

    def add_arguments(self, parser):
        parser.add_argument("--file", type=Path, default=None, help="JSON file; defaults to DEMO_ASSETS_FILE.")
        parser.add_argument(
            "--update",
            action="store_true",
            help="Also overwrite existing assets with the file's values (name, exchange, ids, is_active).",
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Load only into a database with no assets and no asset types (a first start: make run).",
        )

    def handle(self, *args, **options):
        path = options["file"] or settings.DEMO_ASSETS_FILE
        if not path.exists():
            raise CommandError(f"no such file: {escape(path)}")
        if options["if_empty"] and (Asset.objects.exists() or AssetType.objects.exists()):
            # Not a first start: the universe is the operator's now, with their edits and deletions.
            self.stdout.write(
                f"assets: {Asset.objects.count()} in the database, kept as they are "
                "(load_demo_assets adds missing ones from a file, --update overwrites them)"
            )
            return
        try:
            result = load_assets(path, update=options["update"])
        except (json.JSONDecodeError, UnicodeDecodeError, InvalidInputError) as exc:
            raise CommandError(f"{escape(path)} is not an asset file: {escape(exc)}") from None
        # Every refusal names its row's values already escaped; escape() again is cheap insurance.
        for error in result.errors:
            self.stderr.write(f"refused {escape(error)}")
        kept = f"{result.kept} kept"
        if result.kept and not options["update"]:
            kept += " (already in the database; --update overwrites them from the file)"
        self.stdout.write(
            f"assets: {result.created} created, {result.updated} updated, {kept}, {len(result.errors)} refused"
        )
        if result.errors:
            raise CommandError(f"{len(result.errors)} asset(s) refused")
