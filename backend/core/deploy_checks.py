"""Our own notes for `manage.py check --deploy`, registered by the core app."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Info, Tags, register


@register(Tags.security, deploy=True)
def hsts_is_off_until_asked(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Say that HSTS is off by choice (it replaces Django's security.W004, silenced while it is off)."""
    if settings.SECURE_HSTS_SECONDS:
        return []
    return [
        Info(
            "HSTS is off (DJANGO_HSTS_SECONDS=0), as it is until asked for.",
            hint="Once every client reaches this site over https, set DJANGO_HSTS_SECONDS (3600 first, then "
            "31536000): browsers then refuse plain http to it for that long.",
            id="financehub.I001",
        )
    ]
