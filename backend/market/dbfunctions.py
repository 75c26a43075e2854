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
        """Whole seconds of SQLite's UTC text timestamp plus its fraction, read from the text itself.

        Not ``julianday()``: a Julian day as a double is exact to ~10 us only, so a quote fetched at
        20:00:00 came back as 20:00:00.000013 (``explain_route`` printed that fetch time and an age of
        4m59s for 5m00s). Django writes 'YYYY-MM-DD HH:MM:SS[.ffffff]': characters 20-26 are the fraction.
        """
        sql, params = compiler.compile(self.source_expressions[0])
        # '%%' reaches SQLite as '%' (Django's SQLite cursor turns the %s placeholders into ?).
        epoch = f"(CAST(strftime('%%s', {sql}) AS REAL) + CAST(substr({sql}, 20, 7) AS REAL))"
        return epoch, (*params, *params)


def from_epoch(seconds: float | None) -> datetime | None:
    """The aware UTC datetime of ``seconds`` since 1970 (None stays None)."""
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)
