"""Technical indicators for close-price series, computed with TA-Lib.

Pure functions on numpy arrays: no Django, no Celery, no I/O. The hourly task loads closes
for a chunk of assets, calls :func:`compute_for_many` and stores the latest values.

All indicators use TA-Lib's defaults: SMA-seeded EMAs, Wilder-smoothed RSI and Bollinger
Bands over a simple moving average with the population standard deviation.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, fields
from typing import TypeVar

import numpy as np
import talib

__all__ = [
    "INDICATOR_NAMES",
    "IndicatorPeriods",
    "IndicatorValues",
    "compute_for_many",
    "compute_indicator_series",
    "compute_indicators",
    "latest_or_none",
    "warmup",
]

K = TypeVar("K", bound=Hashable)

# TA-Lib accepts periods from 2 up to this value and rejects anything else at call time;
# checking when the periods are built reports a bad setting once, not per asset.
_MAX_PERIOD = 100_000


@dataclass(frozen=True)
class IndicatorPeriods:
    """Look-back periods for every indicator; the defaults are the usual daily-chart ones."""

    sma: int = 20
    ema: int = 20
    rsi: int = 14
    macd_fast: int = 12
    macd_slow: int = 26
    macd_signal: int = 9
    bb_period: int = 20
    bb_stddev: float = 2.0

    def __post_init__(self) -> None:
        for name in ("sma", "ema", "rsi", "macd_fast", "macd_slow", "bb_period"):
            _check_period(name, getattr(self, name), minimum=2)
        # A one-bar signal EMA is the MACD line itself, which TA-Lib allows.
        _check_period("macd_signal", self.macd_signal, minimum=1)
        # TA-Lib silently swaps fast and slow when they are reversed, so a typo in
        # settings would go unnoticed; refuse it instead.
        if self.macd_fast >= self.macd_slow:
            raise ValueError(f"macd_fast ({self.macd_fast}) must be smaller than macd_slow ({self.macd_slow})")
        if isinstance(self.bb_stddev, bool) or not isinstance(self.bb_stddev, int | float):
            raise ValueError(f"bb_stddev must be a number, got {self.bb_stddev!r}")
        if not (math.isfinite(self.bb_stddev) and self.bb_stddev > 0):
            raise ValueError(f"bb_stddev must be a positive finite number, got {self.bb_stddev!r}")


def _check_period(name: str, value: object, *, minimum: int) -> None:
    # bool is an int subclass; True as a period is always a mistake.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if not minimum <= value <= _MAX_PERIOD:
        raise ValueError(f"{name} must be between {minimum} and {_MAX_PERIOD}, got {value}")


@dataclass(frozen=True, slots=True)
class IndicatorValues:
    """Latest value of each indicator; None while the series is too short to compute it."""

    sma: float | None
    ema: float | None
    rsi: float | None
    macd: float | None
    macd_signal: float | None
    macd_hist: float | None
    bb_upper: float | None
    bb_middle: float | None
    bb_lower: float | None


INDICATOR_NAMES: tuple[str, ...] = tuple(f.name for f in fields(IndicatorValues))


def warmup(periods: IndicatorPeriods) -> dict[str, int]:
    """Minimum number of closes each indicator needs before it yields a value (lookback + 1).

    EMA-based values (ema, rsi, macd*) depend on where the seed falls, so backfill a margin
    beyond these minimums if values must match a longer-history source.
    """
    # Lookbacks as TA-Lib defines them with its default (zero) unstable period.
    macd_lookback = (periods.macd_slow - 1) + (periods.macd_signal - 1)
    lookbacks = {
        "sma": periods.sma - 1,
        "ema": periods.ema - 1,
        # RSI works on price changes, so it needs one close more than its period.
        "rsi": periods.rsi,
        # TA-Lib aligns all three MACD outputs, so the line also waits for the signal.
        "macd": macd_lookback,
        "macd_signal": macd_lookback,
        "macd_hist": macd_lookback,
        "bb_upper": periods.bb_period - 1,
        "bb_middle": periods.bb_period - 1,
        "bb_lower": periods.bb_period - 1,
    }
    return {name: lookback + 1 for name, lookback in lookbacks.items()}


def latest_or_none(values: np.ndarray) -> float | None:
    """Return the last element as a float, or None if the array is empty or it is NaN."""
    if values.shape[0] == 0:
        return None
    last = float(values[-1])
    return None if math.isnan(last) else last


def compute_indicator_series(closes: np.ndarray, periods: IndicatorPeriods) -> dict[str, np.ndarray]:
    """Return the full series of every indicator, aligned with closes and NaN during warm-up."""
    _validate_closes(closes)
    return _series(closes, periods)


def compute_indicators(closes: np.ndarray, periods: IndicatorPeriods) -> IndicatorValues:
    """Return the latest value of every indicator for one close series (oldest first)."""
    _validate_closes(closes)
    return _latest(closes, periods)


def compute_for_many(series_by_key: Mapping[K, np.ndarray], periods: IndicatorPeriods) -> dict[K, IndicatorValues]:
    """Compute the latest indicator values for a chunk of series, keyed like the input."""
    results: dict[K, IndicatorValues] = {}
    for key, closes in series_by_key.items():
        try:
            _validate_closes(closes)
        except ValueError as exc:
            # Name the asset: without it a bad row in a 5,000-asset chunk is hard to find.
            raise ValueError(f"series {key!r}: {exc}") from exc
        results[key] = _latest(closes, periods)
    return results


def _validate_closes(closes: np.ndarray) -> None:
    # Strict on purpose: silently casting would hide Decimal/object columns from the ORM,
    # and TA-Lib would propagate a single NaN through every later EMA value.
    if not isinstance(closes, np.ndarray):
        raise ValueError(f"closes must be a numpy array, got {type(closes).__name__}")
    if closes.ndim != 1:
        raise ValueError(f"closes must be 1-D, got shape {closes.shape}")
    if closes.dtype != np.float64:
        raise ValueError(f"closes must have dtype float64, got {closes.dtype}")
    if not np.isfinite(closes).all():
        bad = int(np.flatnonzero(~np.isfinite(closes))[0])
        raise ValueError(f"closes must be finite, found {closes[bad]} at index {bad}")


def _series(closes: np.ndarray, periods: IndicatorPeriods) -> dict[str, np.ndarray]:
    macd, macd_signal, macd_hist = talib.MACD(
        closes,
        fastperiod=periods.macd_fast,
        slowperiod=periods.macd_slow,
        signalperiod=periods.macd_signal,
    )
    # matype 0 (SMA) is TA-Lib's default; pass it so the middle band is explicitly the SMA.
    bb_upper, bb_middle, bb_lower = talib.BBANDS(
        closes,
        timeperiod=periods.bb_period,
        nbdevup=periods.bb_stddev,
        nbdevdn=periods.bb_stddev,
        matype=0,
    )
    rsi = talib.RSI(closes, timeperiod=periods.rsi)
    # Only a 0.0 reading can be the 0/0 case, so the flatness scan runs rarely.
    if rsi.shape[0] > 0 and rsi[-1] == 0.0 and _is_flat(closes):
        # With no gains and no losses RSI is 0/0; TA-Lib reports 0.0, which reads as
        # "maximally oversold" for a pegged or suspended asset. Undefined is the honest answer.
        rsi[:] = np.nan
    return {
        "sma": talib.SMA(closes, timeperiod=periods.sma),
        "ema": talib.EMA(closes, timeperiod=periods.ema),
        "rsi": rsi,
        "macd": macd,
        "macd_signal": macd_signal,
        "macd_hist": macd_hist,
        "bb_upper": bb_upper,
        "bb_middle": bb_middle,
        "bb_lower": bb_lower,
    }


def _is_flat(closes: np.ndarray) -> bool:
    return closes.shape[0] > 0 and bool((closes == closes[0]).all())


def _latest(closes: np.ndarray, periods: IndicatorPeriods) -> IndicatorValues:
    series = _series(closes, periods)
    return IndicatorValues(**{name: latest_or_none(series[name]) for name in INDICATOR_NAMES})
