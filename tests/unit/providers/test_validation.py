"""Strict checks on symbols going out and numbers/timestamps/bars coming back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from backend.providers.errors import MalformedReplyError, PermanentProviderError, UnknownSymbolError
from backend.providers.models import Bar
from backend.providers.validation import (
    COIN_ID,
    PAIR,
    TICKER,
    InvalidRecordError,
    check_bar,
    check_interval,
    check_symbol,
    chunks,
    floor_to_interval,
    from_epoch,
    keep_last_per_timestamp,
    split_symbols,
    to_decimal,
    to_utc,
)
from tests.unit.providers.fakes import FIXED_NOW


@pytest.mark.parametrize("symbol", ["AAPL", "BRK.B", "BRK-B", "TSCO.LON", "BTC-USD", "EURUSD=X", "^GSPC", "7203.T"])
def test_it_accepts_real_world_tickers(symbol: str) -> None:
    assert check_symbol(symbol) == symbol


@pytest.mark.parametrize(
    "symbol",
    [
        "",
        "aapl",
        "AAPL\n",
        "AA PL",
        "../X",
        "A/B",
        "A?B",
        "A#B",
        "A%2F",
        "A@B",
        "ÄPPL",
        "^",
        "A^B",
        "X" * 21,
        ".",
    ],
)
def test_it_rejects_tickers_outside_the_pattern(symbol: str) -> None:
    with pytest.raises(UnknownSymbolError):
        check_symbol(symbol, pattern=TICKER)


def test_unknown_symbol_errors_are_permanent() -> None:
    with pytest.raises(PermanentProviderError):
        check_symbol(None)


def test_coin_ids_are_lowercase_slugs_and_pairs_are_uppercase_alnum() -> None:
    assert check_symbol("usd-coin", pattern=COIN_ID) == "usd-coin"
    assert check_symbol("BTCUSDT", pattern=PAIR) == "BTCUSDT"
    for bad, pattern in [("Bitcoin", COIN_ID), ("-btc", COIN_ID), ("BTC-USDT", PAIR), ("btcusdt", PAIR)]:
        with pytest.raises(UnknownSymbolError):
            check_symbol(bad, pattern=pattern)


def test_split_symbols_dedupes_and_turns_bad_ones_into_rejected_with_safe_labels() -> None:
    valid, rejected = split_symbols(["AAPL", "AAPL", "BAD\r\nX", "MSFT"])
    assert valid == ["AAPL", "MSFT"]
    assert [r.symbol for r in rejected] == ["BAD\\r\\nX"]
    assert "pattern" in rejected[0].reason


def test_split_symbols_refuses_a_bare_string() -> None:
    with pytest.raises(TypeError):
        split_symbols("AAPL")


def test_chunks_cut_in_order() -> None:
    assert chunks([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("96512.34000000", Decimal("96512.34000000")),
        (237.33, Decimal("237.33")),
        (5, Decimal(5)),
        ("1e3", Decimal(1000)),
    ],
)
def test_to_decimal_parses_strings_floats_and_ints(value: object, expected: Decimal) -> None:
    assert to_decimal(value, field="price") == expected


@pytest.mark.parametrize(
    "value",
    [
        "NaN",
        "nan",
        "Infinity",
        "-Infinity",
        "inf",
        "sNaN",
        float("nan"),
        float("inf"),
        Decimal("NaN"),
        None,
        True,
        "",
        "1_000",
        "12abc",
        [1],
    ],
)
def test_to_decimal_rejects_non_finite_and_non_numbers(value: object) -> None:
    with pytest.raises(InvalidRecordError):
        to_decimal(value, field="price")


def test_to_decimal_rejects_negatives_unless_allowed_and_zero_when_positive_required() -> None:
    with pytest.raises(InvalidRecordError, match="negative"):
        to_decimal("-1.5", field="price")
    assert to_decimal("-1.5", field="change", allow_negative=True) == Decimal("-1.5")
    with pytest.raises(InvalidRecordError, match="greater than zero"):
        to_decimal("0", field="price", positive=True)


def test_to_decimal_rejects_absurd_magnitudes() -> None:
    with pytest.raises(InvalidRecordError, match="range"):
        to_decimal("1e999", field="price")


def test_invalid_record_error_is_a_malformed_reply() -> None:
    assert issubclass(InvalidRecordError, MalformedReplyError)


def test_to_utc_converts_aware_times_and_parses_iso_z() -> None:
    eastern = timezone(timedelta(hours=-5))
    assert to_utc(datetime(2026, 11, 27, 9, 30, tzinfo=eastern), now=FIXED_NOW) == datetime(
        2026, 11, 27, 14, 30, tzinfo=UTC
    )
    assert to_utc("2026-11-28T11:59:00.000Z", now=FIXED_NOW).tzinfo is UTC


def test_to_utc_rejects_naive_timestamps() -> None:
    with pytest.raises(InvalidRecordError, match="naive"):
        to_utc(datetime(2026, 11, 27, 9, 30), now=FIXED_NOW)  # noqa: DTZ001 - the point of the test
    with pytest.raises(InvalidRecordError, match="naive"):
        to_utc("2026-11-27T09:30:00", now=FIXED_NOW)


def test_to_utc_allows_small_clock_skew_but_rejects_the_future() -> None:
    assert to_utc(FIXED_NOW + timedelta(minutes=4), now=FIXED_NOW)
    with pytest.raises(InvalidRecordError, match="future"):
        to_utc(FIXED_NOW + timedelta(minutes=6), now=FIXED_NOW)


def test_from_epoch_reads_seconds_and_milliseconds() -> None:
    assert from_epoch(1732886400, now=FIXED_NOW) == datetime(2024, 11, 29, 13, 20, tzinfo=UTC)
    assert from_epoch(1732886400123, unit="ms", now=FIXED_NOW).microsecond == 123000
    with pytest.raises(InvalidRecordError):
        from_epoch("1732886400", now=FIXED_NOW)
    with pytest.raises(InvalidRecordError):
        from_epoch(10**20, now=FIXED_NOW)


@pytest.mark.parametrize(
    ("interval", "expected"),
    [
        ("1m", datetime(2026, 11, 25, 14, 31, tzinfo=UTC)),
        ("1h", datetime(2026, 11, 25, 14, 0, tzinfo=UTC)),
        ("4h", datetime(2026, 11, 25, 12, 0, tzinfo=UTC)),
        ("1d", datetime(2026, 11, 25, tzinfo=UTC)),
        ("1w", datetime(2026, 11, 23, tzinfo=UTC)),  # a Monday
    ],
)
def test_floor_to_interval(interval: str, expected: datetime) -> None:
    assert floor_to_interval(datetime(2026, 11, 25, 14, 31, 59, tzinfo=UTC), interval) == expected


def test_check_interval_refuses_unsupported_intervals() -> None:
    assert check_interval("1d", ("1d", "1h")) == "1d"
    with pytest.raises(PermanentProviderError):
        check_interval("7d", ("1d", "1h"))


def make_bar(**overrides: object) -> Bar:
    values: dict[str, object] = {
        "symbol": "AAPL",
        "interval": "1d",
        "timestamp": datetime(2026, 11, 27, tzinfo=UTC),
        "open": Decimal("10"),
        "high": Decimal("12"),
        "low": Decimal("9"),
        "close": Decimal("11"),
        "volume": Decimal("100"),
        "source": "test",
    }
    values.update(overrides)
    return Bar(**values)  # type: ignore[arg-type]


def test_check_bar_accepts_a_consistent_bar() -> None:
    bar = make_bar()
    assert check_bar(bar) is bar


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"high": Decimal("8")}, "high"),
        ({"low": Decimal("-1")}, "low must be > 0"),
        ({"volume": Decimal("-1")}, "volume"),
        ({"close": Decimal("13")}, "close"),
        ({"open": Decimal("NaN")}, "open"),
    ],
)
def test_check_bar_rejects_inconsistent_bars(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRecordError, match=message):
        check_bar(make_bar(**overrides))


def test_keep_last_per_timestamp_sorts_dedupes_and_trims() -> None:
    day = datetime(2026, 11, 27, tzinfo=UTC)
    bars = [
        make_bar(timestamp=day, close=Decimal("11")),
        make_bar(timestamp=day - timedelta(days=1)),
        make_bar(timestamp=day, close=Decimal("10.5")),
    ]
    kept = keep_last_per_timestamp(bars, limit=5)
    assert [b.timestamp for b in kept] == [day - timedelta(days=1), day]
    assert kept[-1].close == Decimal("10.5")
    assert len(keep_last_per_timestamp(bars, limit=1)) == 1
