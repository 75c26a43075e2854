"""Strict checks for what goes into provider URLs and what comes back out of provider replies.

Symbol patterns (all matched with ``re.fullmatch``, so a trailing newline never sneaks through):

* ``TICKER`` – equities, indices, FX and Yahoo crypto pairs: ``AAPL``, ``BRK.B``, ``TSCO.LON``,
  ``BTC-USD``, ``EURUSD=X``, ``^GSPC``. Upper-case letters and digits, then ``. - =``; a ``^`` is
  allowed only as the first character (index prefix). 1 to 20 characters. No ``/``, ``?``, ``#``,
  ``%``, ``@``, ``:``, whitespace or non-ASCII can ever pass, so a symbol cannot leave its path segment.
* ``PAIR`` – exchange pairs such as Binance's ``BTCUSDT``: upper-case letters and digits, 2 to 20.
* ``COIN_ID`` – CoinGecko ids, lower-case slugs: ``bitcoin``, ``usd-coin``; 1 to 64 characters.
* ``CRYPTO_SYMBOL`` – CoinMarketCap symbols, letters and digits (``BTC``, ``1INCH``, ``stETH``), 1 to 20.

A symbol that fails its pattern is never requested; the client reports it as a ``Rejected``.

Record checks raise ``InvalidRecordError`` (a ``MalformedReplyError``): a client catches it per
record and turns it into a ``Rejected`` (quotes) or drops the record with a log line (bars, articles),
so one bad record never sinks the batch.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from backend.providers.errors import MalformedReplyError, PermanentProviderError, UnknownSymbolError
from backend.providers.models import Bar, Rejected

Clock = Callable[[], datetime]
T = TypeVar("T")

TICKER = re.compile(r"\^?[A-Z0-9][A-Z0-9.=\-]{0,19}")
PAIR = re.compile(r"[A-Z0-9]{2,20}")
COIN_ID = re.compile(r"[a-z0-9][a-z0-9\-]{0,63}")
CRYPTO_SYMBOL = re.compile(r"[A-Za-z0-9]{1,20}")

MAX_CLOCK_SKEW = timedelta(minutes=5)
# Far above any price, volume or market cap we store; keeps "1e999999" out of numeric columns.
MAX_NUMBER = Decimal("1e18")
_NUMBER_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,4})?")

# Neutral bar intervals -> length in seconds ("1w" buckets start on Monday 00:00 UTC).
INTERVAL_SECONDS: dict[str, int] = {
    "1m": 60,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "4h": 14400,
    "1d": 86400,
    "1w": 604800,
}


class InvalidRecordError(MalformedReplyError):
    """One record of a reply failed validation; the rest of the reply may still be good."""


def utc_now() -> datetime:
    """The default clock: an aware UTC ``datetime``."""
    return datetime.now(UTC)


def seconds_to_utc_midnight(now: datetime | None = None) -> float:
    """Seconds until the next 00:00 UTC, when daily provider quotas (Alpha Vantage, CMC 1009) reset."""
    now = now or utc_now()
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    return (midnight - now).total_seconds()


def check_symbol(symbol: object, *, pattern: re.Pattern[str] = TICKER) -> str:
    """Return ``symbol`` unchanged if it fully matches ``pattern``; raise ``UnknownSymbolError`` if not."""
    if not isinstance(symbol, str):
        raise UnknownSymbolError(f"symbol must be a string, got {type(symbol).__name__}")
    if not symbol:
        raise UnknownSymbolError("symbol is empty")
    if pattern.fullmatch(symbol) is None:
        shown = _safe_label(symbol)
        raise UnknownSymbolError(f"symbol {shown!r} does not match the allowed pattern {pattern.pattern}")
    return symbol


def split_symbols(symbols: Iterable[object], *, pattern: re.Pattern[str] = TICKER) -> tuple[list[str], list[Rejected]]:
    """Split requested symbols into valid unique ones (order kept) and ``Rejected`` for the rest."""
    if isinstance(symbols, str):
        raise TypeError("symbols must be a sequence of strings, not one string")
    valid: list[str] = []
    rejected: list[Rejected] = []
    seen: set[str] = set()
    for raw in symbols:
        try:
            symbol = check_symbol(raw, pattern=pattern)
        except UnknownSymbolError as exc:
            # An identifier the provider could never accept is as good as unknown to it.
            rejected.append(Rejected(symbol=_safe_label(raw), reason=str(exc), unknown=True))
            continue
        if symbol not in seen:
            seen.add(symbol)
            valid.append(symbol)
    return valid, rejected


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """Cut ``items`` into consecutive slices of at most ``size``."""
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    return [items[i : i + size] for i in range(0, len(items), size)]


def to_decimal(value: object, *, field: str, allow_negative: bool = False, positive: bool = False) -> Decimal:
    """Parse a JSON number or numeric string into a finite ``Decimal``; NaN, Infinity, junk,
    negatives (unless ``allow_negative``) and zero (when ``positive``) raise ``InvalidRecordError``."""
    if isinstance(value, bool) or value is None:
        raise InvalidRecordError(f"{field}: expected a number, got {type(value).__name__}")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        # repr() gives the shortest round-tripping text, so 0.1 stays 0.1, not 0.1000000000000000055...
        number = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip()
        if _NUMBER_TEXT.fullmatch(text) is None:
            raise InvalidRecordError(f"{field}: {value[:30]!r} is not a plain decimal number")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise InvalidRecordError(f"{field}: {value[:30]!r} is not a number") from None
    else:
        raise InvalidRecordError(f"{field}: expected a number, got {type(value).__name__}")
    if not number.is_finite():
        raise InvalidRecordError(f"{field}: non-finite value {number}")
    if abs(number) >= MAX_NUMBER:
        raise InvalidRecordError(f"{field}: value out of range")
    if number < 0 and not allow_negative:
        raise InvalidRecordError(f"{field}: negative value {number}")
    if positive and number <= 0:
        raise InvalidRecordError(f"{field}: must be greater than zero, got {number}")
    return number


def optional_decimal(value: object, *, field: str, allow_negative: bool = False) -> Decimal | None:
    """Like :func:`to_decimal` but ``None`` stays ``None`` (for optional vendor fields)."""
    if value is None:
        return None
    return to_decimal(value, field=field, allow_negative=allow_negative)


def to_utc(
    ts: datetime | str,
    *,
    now: datetime | None = None,
    max_skew: timedelta = MAX_CLOCK_SKEW,
) -> datetime:
    """Return ``ts`` as an aware UTC datetime; reject naive values and anything later than now + skew.

    ISO-8601 strings are accepted when they carry an offset (``Z`` or ``+00:00``).
    """
    if isinstance(ts, str):
        try:
            ts = datetime.fromisoformat(ts.strip())
        except ValueError:
            raise InvalidRecordError(f"timestamp {ts[:40]!r} is not ISO-8601") from None
    if not isinstance(ts, datetime):
        raise InvalidRecordError(f"timestamp must be a datetime, got {type(ts).__name__}")
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise InvalidRecordError(f"timestamp {ts.isoformat()} is naive (no UTC offset)")
    ts = ts.astimezone(UTC)
    reference = now if now is not None else utc_now()
    if ts > reference + max_skew:
        raise InvalidRecordError(f"timestamp {ts.isoformat()} is in the future")
    return ts


def from_epoch(value: object, *, unit: str = "s", now: datetime | None = None) -> datetime:
    """Convert epoch seconds (``unit="s"``) or milliseconds (``unit="ms"``) to a checked UTC datetime."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
        raise InvalidRecordError(f"epoch timestamp must be a number, got {type(value).__name__}")
    number = to_decimal(value, field="timestamp")
    seconds = number / 1000 if unit == "ms" else number
    try:
        ts = datetime.fromtimestamp(float(seconds), tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidRecordError(f"epoch timestamp {value} is out of range") from None
    return to_utc(ts, now=now)


def check_interval(interval: str, supported: Iterable[str]) -> str:
    """Return ``interval`` if the provider supports it, else raise ``PermanentProviderError``."""
    allowed = tuple(supported)
    if interval not in allowed:
        raise PermanentProviderError(f"interval {interval[:10]!r} not supported; use one of {', '.join(allowed)}")
    return interval


def floor_to_interval(ts: datetime, interval: str) -> datetime:
    """Floor an aware UTC timestamp to the start of its ``interval`` bucket (weeks start Monday)."""
    ts = ts.astimezone(UTC)
    if interval == "1w":
        day = ts.replace(hour=0, minute=0, second=0, microsecond=0)
        return day - timedelta(days=day.weekday())
    step = INTERVAL_SECONDS[interval]
    epoch = int(ts.timestamp())
    return datetime.fromtimestamp(epoch - epoch % step, tz=UTC)


def check_bar(bar: Bar) -> Bar:
    """Check one bar's internal consistency: prices > 0, volume >= 0, low <= open/close <= high."""
    for field_name in ("open", "high", "low", "close"):
        value = getattr(bar, field_name)
        if not value.is_finite() or value <= 0:
            raise InvalidRecordError(f"bar {bar.timestamp.isoformat()}: {field_name} must be > 0")
    if not bar.volume.is_finite() or bar.volume < 0:
        raise InvalidRecordError(f"bar {bar.timestamp.isoformat()}: volume must be >= 0")
    if bar.high < bar.low:
        raise InvalidRecordError(f"bar {bar.timestamp.isoformat()}: high {bar.high} < low {bar.low}")
    for field_name in ("open", "close"):
        value = getattr(bar, field_name)
        if not bar.low <= value <= bar.high:
            raise InvalidRecordError(f"bar {bar.timestamp.isoformat()}: {field_name} {value} outside low..high")
    return bar


def keep_last_per_timestamp(bars: Iterable[Bar], limit: int) -> list[Bar]:
    """Sort bars by time, keep the last one per (floored) timestamp, and return the newest ``limit``."""
    latest: dict[datetime, Bar] = {}
    for bar in bars:
        latest[bar.timestamp] = bar
    ordered = [latest[key] for key in sorted(latest)]
    return ordered[-limit:] if limit > 0 else []


def check_limit(limit: int, *, maximum: int) -> int:
    """Validate a bar count: an ``int`` between 1 and ``maximum``."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= maximum:
        raise PermanentProviderError(f"limit must be an integer between 1 and {maximum}")
    return limit


def _safe_label(value: object) -> str:
    """A printable, bounded label for a rejected input, safe to store and log."""
    text = value if isinstance(value, str) else repr(value)
    # unicode_escape turns CR/LF, other controls and non-ASCII into visible \n, \xe9, ... sequences.
    return text[:40].encode("unicode_escape").decode("ascii")


R = TypeVar("R")


def map_batch(
    batch: Sequence[str],
    find: Callable[[str], object | None],
    to_record: Callable[[str, object], R],
    *,
    provider: str,
    missing: str,
    missing_is_unknown: bool = True,
) -> tuple[list[R], list[Rejected]]:
    """Map each requested identifier's reply entry; an absent or invalid one is rejected alone, with a reason.

    An absent entry is ``unknown`` when that is how the API says "no such symbol" (``missing_is_unknown``);
    an invalid record (NaN, zero price, bad timestamp) never is.
    """
    from backend.providers.http import strip_control  # http imports nothing from here; keep it one-way at import

    records: list[R] = []
    rejected: list[Rejected] = []
    for identifier in batch:
        entry = find(identifier)
        if entry is None:
            rejected.append(Rejected(symbol=identifier, reason=f"{provider}: {missing}", unknown=missing_is_unknown))
            continue
        try:
            records.append(to_record(identifier, entry))
        except InvalidRecordError as exc:
            rejected.append(Rejected(symbol=identifier, reason=f"{provider}: {strip_control(exc)}"))
    return records, rejected
