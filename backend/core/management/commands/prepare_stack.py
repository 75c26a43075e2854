"""Get a checkout ready to run: migrate, static files, demo assets, schedules, credentials.

Run on every start (``make run``), so it only ever adds what is missing: the demo universe is loaded
into an empty database once, and an operator's later edits to assets (paused, renamed, quarantined,
deleted) stay as they are across restarts, as their edits to schedules do.
"""

import secrets
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from backend.core.environment import write_secret_file


def _credential(path: Path, user: str) -> str:
    """Return the password kept in ``path``, generating it (in a file only its owner can read) on the first run."""
    if not path.exists():
        write_secret_file(path, f"{user}:{secrets.token_urlsafe(18)}\n")
    return path.read_text().strip().split(":", 1)[1]


def _token_source() -> str:
    """Where the scrape token lives (never the token itself: this output lands in logs)."""
    path = settings.VAR_DIR / "metrics_token"
    generated = path.read_text().strip() if path.exists() else ""
    return str(path) if settings.METRICS_TOKEN == generated else "METRICS_TOKEN"


class Command(BaseCommand):
    help = (
        "Migrate, collect static files, load the demo universe into an empty database, sync schedules "
        "and create local credentials."
    )

    def handle(self, *args, **options):
        call_command("migrate", verbosity=0)
        call_command("createcachetable", verbosity=0)
        # gunicorn + WhiteNoise serve the admin's CSS/JS from STATIC_ROOT, as in the image.
        call_command("collectstatic", interactive=False, verbosity=0)
        # Only into an empty database: reloading on every start undid operators' edits and deletions.
        call_command("load_demo_assets", "--if-empty", stdout=self.stdout)
        call_command("sync_schedules", stdout=self.stdout)
        var = settings.VAR_DIR
        admin_password = _credential(var / "admin_credentials", "admin")
        user_model = get_user_model()
        admin, _ = user_model.objects.get_or_create(username="admin", defaults={"is_staff": True, "is_superuser": True})
        admin.set_password(admin_password)
        admin.save()
        flower_password = _credential(var / "flower_credentials", "flower")
        broker = urlsplit(settings.CELERY_BROKER_URL)
        broker_at = f"{broker.scheme}://{broker.hostname or ''}" + (f":{broker.port}" if broker.port else "")
        self.stdout.write(
            "\nFinanceHub task platform\n"
            f"  dashboard http://127.0.0.1:{settings.WEB_PORT}/         log in as admin\n"
            f"  admin     http://127.0.0.1:{settings.WEB_PORT}/admin/   user admin  / {admin_password}\n"
            f"  flower    http://127.0.0.1:{settings.FLOWER_PORT}/      user flower / {flower_password}\n"
            f"  metrics   http://127.0.0.1:{settings.WEB_PORT}/metrics and flower's /metrics: "
            f"Authorization: Bearer <{_token_source()}>\n"
            f"  broker    {broker_at}\n"
            f"  db        {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]} "
            f"{settings.DATABASES['default']['NAME']}\n"
        )
