"""Time compute_for_many on a synthetic chunk: 10,000 random-walk series x 250 daily closes.

Run from the repo root: .venv/bin/python -m bench.bench_indicators_maths [n_series] [n_bars]
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

from backend.market.indicators import IndicatorPeriods, compute_for_many


def make_series(n_series: int, n_bars: int, *, seed: int = 0) -> dict[int, np.ndarray]:
    """Build positive random-walk close series, one contiguous float64 array per key."""
    rng = np.random.default_rng(seed)
    log_returns = rng.normal(0.0, 0.02, size=(n_series, n_bars))
    closes = 100.0 * np.exp(np.cumsum(log_returns, axis=1))
    # Copy each row so every series owns its memory, as arrays built from DB rows would.
    return {i: closes[i].copy() for i in range(n_series)}


def main() -> None:
    n_series = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    n_bars = int(sys.argv[2]) if len(sys.argv) > 2 else 250
    series = make_series(n_series, n_bars)
    periods = IndicatorPeriods()
    compute_for_many(series, periods)  # warm-up run: imports, allocator, caches

    timings = []
    for _ in range(5):
        start = time.perf_counter()
        result = compute_for_many(series, periods)
        timings.append(time.perf_counter() - start)
    assert len(result) == n_series

    best, median = min(timings), statistics.median(timings)
    print(f"compute_for_many: {n_series} series x {n_bars} bars, 5 runs")
    print(f"  best   {best:.3f} s  ({best / n_series * 1e6:.1f} us/series)")
    print(f"  median {median:.3f} s  ({median / n_series * 1e6:.1f} us/series)")


if __name__ == "__main__":
    main()
