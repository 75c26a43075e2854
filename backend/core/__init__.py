"""The floor of the platform: settings, the bare Celery app, secrets, start-up checks; imports no layer above."""

import os
import sys

from django.core.exceptions import ImproperlyConfigured

from .celery import app as celery_app

__all__ = ("celery_app",)


def _load_settings_or_exit() -> None:
    """Load settings now so bad configuration stops any entry point with one line."""
    from django.conf import settings

    try:
        settings.INSTALLED_APPS  # noqa: B018 - forces the settings module to load and validate
    except ImproperlyConfigured as exc:
        sys.stderr.write(f"configuration error: {exc}\n")
        raise SystemExit(2) from None


if os.environ.get("DJANGO_SETTINGS_MODULE") == "backend.core.settings":
    _load_settings_or_exit()
