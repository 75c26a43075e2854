"""Bulk rows for benchmarks on a big platform (Django must be set up first)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta


def truncate(*models: type) -> None:
    """Empty the tables of ``models`` and of every row that points at them."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(m._meta.db_table for m in models)} CASCADE")


def quote_every_asset(now: datetime, age: Callable[[], timedelta]) -> None:
    """One bench quote per asset, fetched at ``now`` and as old as ``age()`` says (called once per asset)."""
    from backend.market.models import Asset, Quote

    Quote.objects.bulk_create(
        Quote(asset_id=pk, price=1, as_of=now - age(), source="bench", fetched_at=now)
        for pk in Asset.objects.values_list("pk", flat=True)
    )
