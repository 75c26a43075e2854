"""Database functions the market queries share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db.models import FloatField, Func


class EpochSeconds(Func):
    """Seconds since 1970 (UTC) of a datetime column, as a float.

    A dispatch reads two timestamps for each of thousands of assets; the database driver's aware
    datetime loader costs several microseconds a value in Python, a float almost nothing
    (:func:`from_epoch` turns it back into a datetime).
    """

    output_field = FloatField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        """``EXTRACT(EPOCH ...)`` as double precision (PostgreSQL returns numeric otherwise)."""
        template = "EXTRACT(EPOCH FROM %(expressions)s)::double precision"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        """From the Julian day of SQLite's UTC text timestamps."""
        template = "((julianday(%(expressions)s) - 2440587.5) * 86400.0)"
        return self.as_sql(compiler, connection, template=template, **extra)


def from_epoch(seconds: float | None) -> datetime | None:
    """The aware UTC datetime of ``seconds`` since 1970 (None stays None)."""
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)
