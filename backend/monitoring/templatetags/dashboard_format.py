"""Template filters of the operator dashboard: short durations and ages."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone

from backend.monitoring.dashboard.panels import age_text, duration_text

register = template.Library()


@register.filter
def duration(seconds: float | None) -> str:
    """``5m10s`` for 310 seconds; ``-`` for nothing."""
    return duration_text(seconds)


@register.filter
def age(moment: datetime | None) -> str:
    """How long ago ``moment`` was, e.g. ``3h02m``; ``never`` for nothing."""
    return age_text(moment, timezone.now())


@register.filter
def get(mapping: dict | None, key: str) -> object:
    """``mapping[key]``, or None when it is missing (template lookups cannot use dotted keys)."""
    return (mapping or {}).get(key)
