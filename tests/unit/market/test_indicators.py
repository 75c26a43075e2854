"""Indicator maths checked against values derived by hand or by small reference code here."""

from __future__ import annotations

import math

import numpy as np
import pytest
from talib import abstract

from backend.market.indicators import (
    INDICATOR_NAMES,
    IndicatorPeriods,
    IndicatorValues,
    compute_for_many,
    compute_indicator_series,
    compute_indicators,
    latest_or_none,
    warmup,
)

DEFAULT = IndicatorPeriods()


def closes(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)


def wavy_series(n: int) -> np.ndarray:
    """Deterministic, non-monotonic closes so that every indicator is well defined."""
    i = np.arange(n, dtype=np.float64)
    return 100.0 + 10.0 * np.sin(i / 5.0) + 0.3 * i + 2.0 * np.cos(i * 1.7)


def reference_ema(values: np.ndarray, period: int, *, seed_end: int | None = None) -> np.ndarray:
    """Plain-Python EMA, seeded with the mean of the `period` values ending at `seed_end`.

    NaN before the seed. By default the seed is the first full window, as TA-Lib does.
    """
    seed_end = period - 1 if seed_end is None else seed_end
    k = 2.0 / (period + 1)
    out = np.full(len(values), np.nan)
    out[seed_end] = sum(values[seed_end - period + 1 : seed_end + 1]) / period
    for i in range(seed_end + 1, len(values)):
        out[i] = k * values[i] + (1 - k) * out[i - 1]
    return out


# --- SMA and EMA -------------------------------------------------------------------------


def test_sma_is_the_mean_of_the_last_window() -> None:
    values = compute_indicators(closes(1, 2, 3, 4, 5), IndicatorPeriods(sma=3))

    assert values.sma == pytest.approx(4.0)  # (3 + 4 + 5) / 3


def test_ema_is_seeded_with_the_sma_of_the_first_window() -> None:
    # period 3 -> k = 2 / (3 + 1) = 0.5
    # seed at index 2: (2 + 4 + 6) / 3 = 4
    # index 3: 0.5 * 8 + 0.5 * 4 = 6
    # index 4: 0.5 * 4 + 0.5 * 6 = 5
    series = compute_indicator_series(closes(2, 4, 6, 8, 4), IndicatorPeriods(ema=3))

    np.testing.assert_allclose(series["ema"], [np.nan, np.nan, 4.0, 6.0, 5.0])


def test_ema_matches_a_reference_ema_on_a_longer_series() -> None:
    data = wavy_series(120)

    values = compute_indicators(data, DEFAULT)

    assert values.ema == pytest.approx(reference_ema(data, 20)[-1], rel=1e-12)


# --- RSI ---------------------------------------------------------------------------------


def test_rsi_of_a_strictly_rising_series_is_100() -> None:
    values = compute_indicators(np.arange(1.0, 31.0), DEFAULT)

    assert values.rsi == pytest.approx(100.0)


def test_rsi_of_a_strictly_falling_series_is_0() -> None:
    values = compute_indicators(np.arange(30.0, 0.0, -1.0), DEFAULT)

    assert values.rsi == pytest.approx(0.0)


def test_rsi_uses_wilder_smoothing() -> None:
    # period 3; changes: +1, -0.5, +1, -0.5, +1
    # seed (simple mean of the first 3 changes): gain 2/3, loss 0.5/3 = 1/6
    #   RSI[3] = 100 * (2/3) / (2/3 + 1/6) = 80
    # Wilder: avg = (prev * (n - 1) + current) / n
    #   change -0.5: gain (2/3 * 2 + 0) / 3 = 4/9, loss (1/6 * 2 + 0.5) / 3 = 5/18
    #   RSI[4] = 100 * (4/9) / (4/9 + 5/18) = 800/13
    #   change +1:   gain (4/9 * 2 + 1) / 3 = 17/27, loss (5/18 * 2 + 0) / 3 = 5/27
    #   RSI[5] = 100 * 17 / (17 + 5) = 1700/22
    data = closes(10, 11, 10.5, 11.5, 11, 12)

    series = compute_indicator_series(data, IndicatorPeriods(rsi=3))

    np.testing.assert_allclose(series["rsi"], [np.nan, np.nan, np.nan, 80.0, 800 / 13, 1700 / 22])
    assert compute_indicators(data, IndicatorPeriods(rsi=3)).rsi == pytest.approx(1700 / 22)


def test_rsi_is_none_for_a_series_that_never_moves() -> None:
    # No gains and no losses make RSI 0/0; TA-Lib would report 0.0 ("maximally oversold").
    values = compute_indicators(np.full(50, 1.0), DEFAULT)

    assert values.rsi is None
    assert values.sma == pytest.approx(1.0)


def test_rsi_keeps_its_value_when_only_the_recent_window_is_flat() -> None:
    data = np.concatenate([np.arange(1.0, 21.0), np.full(20, 20.0)])

    values = compute_indicators(data, DEFAULT)

    # Wilder smoothing remembers the earlier gains, so RSI is still defined (and 100).
    assert values.rsi == pytest.approx(100.0)


# --- MACD --------------------------------------------------------------------------------


def test_macd_is_fast_ema_minus_slow_ema_with_an_ema_signal() -> None:
    data = wavy_series(80)
    fast, slow, signal = 12, 26, 9
    # TA-Lib starts both EMAs on the same bar: the fast EMA is seeded with the mean of the
    # 12 closes ending where the slow EMA's first value is (index 25), not at index 11.
    fast_ema = reference_ema(data, fast, seed_end=slow - 1)
    slow_ema = reference_ema(data, slow)
    macd_line = (fast_ema - slow_ema)[slow - 1 :]
    signal_line = reference_ema(macd_line, signal)

    values = compute_indicators(data, DEFAULT)

    assert values.macd == pytest.approx(macd_line[-1], rel=1e-9)
    assert values.macd_signal == pytest.approx(signal_line[-1], rel=1e-9)
    assert values.macd_hist == pytest.approx(macd_line[-1] - signal_line[-1], rel=1e-9)


def test_macd_line_becomes_available_together_with_its_signal() -> None:
    series = compute_indicator_series(wavy_series(40), DEFAULT)
    first_valid = {name: int(np.flatnonzero(~np.isnan(series[name]))[0]) for name in ("macd", "macd_signal")}

    assert first_valid == {"macd": 33, "macd_signal": 33}  # (26 - 1) + (9 - 1)


# --- Bollinger Bands ---------------------------------------------------------------------


def test_bollinger_bands_use_the_population_stddev() -> None:
    # Mean 5; squared deviations 9, 1, 1, 1, 0, 0, 4, 16 sum to 32; 32 / 8 = 4 -> sd 2.
    # (The sample stddev would be sqrt(32 / 7), about 2.14.)
    data = closes(2, 4, 4, 4, 5, 5, 7, 9)

    values = compute_indicators(data, IndicatorPeriods(bb_period=8, bb_stddev=2.0))

    assert values.bb_middle == pytest.approx(5.0)
    assert values.bb_upper == pytest.approx(9.0)  # 5 + 2 * 2
    assert values.bb_lower == pytest.approx(1.0)  # 5 - 2 * 2


def test_bollinger_middle_is_the_sma_and_width_is_k_stddevs_of_the_window() -> None:
    data = wavy_series(60)
    period, k = 20, 2.5
    window = data[-period:]
    mean = sum(window) / period
    population_sd = math.sqrt(sum((x - mean) ** 2 for x in window) / period)

    values = compute_indicators(data, IndicatorPeriods(sma=period, bb_period=period, bb_stddev=k))

    assert values.bb_middle == pytest.approx(mean, rel=1e-12)
    assert values.bb_middle == pytest.approx(values.sma, rel=1e-12)
    assert values.bb_upper - values.bb_middle == pytest.approx(k * population_sd, rel=1e-9)
    assert values.bb_middle - values.bb_lower == pytest.approx(k * population_sd, rel=1e-9)


# --- Warm-up -----------------------------------------------------------------------------


def test_warmup_gives_the_minimum_closes_for_default_periods() -> None:
    assert warmup(DEFAULT) == {
        "sma": 20,
        "ema": 20,
        "rsi": 15,
        "macd": 34,
        "macd_signal": 34,
        "macd_hist": 34,
        "bb_upper": 20,
        "bb_middle": 20,
        "bb_lower": 20,
    }


@pytest.mark.parametrize(
    "periods",
    [DEFAULT, IndicatorPeriods(sma=5, ema=50, rsi=7, macd_fast=5, macd_slow=35, macd_signal=5, bb_period=10)],
    ids=["default", "custom"],
)
def test_warmup_matches_talib_lookback_plus_one(periods: IndicatorPeriods) -> None:
    def lookback(name: str, **params: float) -> int:
        function = abstract.Function(name)
        function.set_parameters(**params)
        return function.lookback

    macd = lookback(
        "MACD", fastperiod=periods.macd_fast, slowperiod=periods.macd_slow, signalperiod=periods.macd_signal
    )
    bbands = lookback("BBANDS", timeperiod=periods.bb_period, nbdevup=periods.bb_stddev)
    expected = {
        "sma": lookback("SMA", timeperiod=periods.sma) + 1,
        "ema": lookback("EMA", timeperiod=periods.ema) + 1,
        "rsi": lookback("RSI", timeperiod=periods.rsi) + 1,
        **dict.fromkeys(("macd", "macd_signal", "macd_hist"), macd + 1),
        **dict.fromkeys(("bb_upper", "bb_middle", "bb_lower"), bbands + 1),
    }

    assert warmup(periods) == expected


@pytest.mark.parametrize("name", INDICATOR_NAMES)
def test_indicator_is_none_until_warmup_and_a_float_from_then_on(name: str) -> None:
    needed = warmup(DEFAULT)[name]
    data = wavy_series(needed)

    too_short = compute_indicators(data[:-1], DEFAULT)  # exactly the lookback
    just_enough = compute_indicators(data, DEFAULT)  # lookback + 1

    assert getattr(too_short, name) is None
    value = getattr(just_enough, name)
    assert type(value) is float
    assert math.isfinite(value)


def test_an_empty_series_gives_none_everywhere() -> None:
    values = compute_indicators(np.array([], dtype=np.float64), DEFAULT)

    assert values == IndicatorValues(*([None] * len(INDICATOR_NAMES)))


# --- Series and batch --------------------------------------------------------------------


def test_series_are_aligned_with_closes_and_nan_during_warmup() -> None:
    data = wavy_series(50)

    series = compute_indicator_series(data, DEFAULT)
    latest = compute_indicators(data, DEFAULT)

    assert set(series) == set(INDICATOR_NAMES)
    for name, needed in warmup(DEFAULT).items():
        assert series[name].shape == data.shape
        assert np.isnan(series[name][: needed - 1]).all()
        assert not np.isnan(series[name][needed - 1 :]).any()
        assert series[name][-1] == getattr(latest, name)


def test_compute_for_many_matches_one_by_one_results_per_key() -> None:
    chunk = {"AAPL": wavy_series(250), "BTCUSDT": wavy_series(60) * 300, "NEW": wavy_series(10)}

    results = compute_for_many(chunk, DEFAULT)

    assert list(results) == list(chunk)
    for key, data in chunk.items():
        assert results[key] == compute_indicators(data, DEFAULT)
    assert results["NEW"].macd is None


def test_compute_for_many_names_the_series_that_is_invalid() -> None:
    chunk = {"AAPL": wavy_series(30), "BROKEN": closes(1, 2, np.nan)}

    with pytest.raises(ValueError, match="'BROKEN'.*finite"):
        compute_for_many(chunk, DEFAULT)


# --- Helpers and validation --------------------------------------------------------------


def test_latest_or_none_returns_a_plain_float_or_none() -> None:
    assert latest_or_none(np.array([])) is None
    assert latest_or_none(closes(1.0, np.nan)) is None
    value = latest_or_none(closes(np.nan, 2.5))
    assert value == 2.5
    assert type(value) is float


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_it_rejects_non_finite_closes(bad: float) -> None:
    data = wavy_series(40)
    data[7] = bad

    with pytest.raises(ValueError, match="finite.*index 7"):
        compute_indicators(data, DEFAULT)
    with pytest.raises(ValueError, match="finite"):
        compute_indicator_series(data, DEFAULT)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.ones((5, 2)), "1-D"),
        (np.arange(30), "float64"),
        (np.arange(30, dtype=np.float32), "float64"),
        ([1.0, 2.0, 3.0], "numpy array"),
    ],
    ids=["2d", "int64", "float32", "list"],
)
def test_it_rejects_closes_of_the_wrong_shape_or_type(bad: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compute_indicators(bad, DEFAULT)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sma": 1}, "sma must be between 2"),
        ({"rsi": 14.0}, "rsi must be an int"),
        ({"ema": True}, "ema must be an int"),
        ({"macd_signal": 0}, "macd_signal must be between 1"),
        ({"macd_fast": 26, "macd_slow": 12}, "macd_fast .* must be smaller than macd_slow"),
        ({"bb_stddev": 0.0}, "bb_stddev must be a positive"),
        ({"bb_stddev": math.inf}, "bb_stddev must be a positive"),
    ],
)
def test_it_rejects_invalid_periods(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        IndicatorPeriods(**kwargs)  # type: ignore[arg-type]
