"""Market data: data mode, batch and chunk sizes, indicators, retention, dispatch locks, market conditions.

Market conditions (volatility, trading sessions) set how often a symbol is refreshed and at what priority.
"""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from ..environment import env_float, env_int, env_str
from .django import BASE_DIR

# simulated: offline random walk (default); fake: real clients against the local fake server;
# live: real clients against the providers' own hosts (keys: providers.py).
MARKET_DATA_MODE = env_str("MARKET_DATA_MODE", "simulated")
QUOTE_BATCH_SIZE = env_int("QUOTE_BATCH_SIZE", 500)
# Quarantine a symbol after this many refreshes in a row in which every provider of its chain
# reported it unknown (quote fetches then skip it until an operator clears it); 0 = never.
QUARANTINE_AFTER_UNKNOWN = env_int("QUARANTINE_AFTER_UNKNOWN", 3)
INDICATOR_CHUNK_SIZE = env_int("INDICATOR_CHUNK_SIZE", 500)
INDICATOR_INTERVAL = env_str("INDICATOR_INTERVAL", "1d")
INDICATOR_HISTORY_BARS = env_int("INDICATOR_HISTORY_BARS", 250)
INDICATOR_PERIODS = {
    "sma": env_int("INDICATOR_SMA_PERIOD", 20),
    "ema": env_int("INDICATOR_EMA_PERIOD", 20),
    "rsi": env_int("INDICATOR_RSI_PERIOD", 14),
    "macd_fast": env_int("INDICATOR_MACD_FAST", 12),
    "macd_slow": env_int("INDICATOR_MACD_SLOW", 26),
    "macd_signal": env_int("INDICATOR_MACD_SIGNAL", 9),
    "bb_period": env_int("INDICATOR_BB_PERIOD", 20),
    "bb_stddev": env_float("INDICATOR_BB_STDDEV", 2.0),
}
NEWS_QUERY_SYMBOLS = env_int("NEWS_QUERY_SYMBOLS", 20)
# Retention, in days: task results, bars per interval, closed dead letters.
RETENTION_DAYS = {
    "task_results": env_int("RETENTION_TASK_RESULTS_DAYS", 7),
    "bars_5m": env_int("RETENTION_BARS_5M_DAYS", 7),
    "bars_1h": env_int("RETENTION_BARS_1H_DAYS", 90),
    "bars_1d": env_int("RETENTION_BARS_1D_DAYS", 3650),
    "dispatch_runs": env_int("RETENTION_DISPATCH_RUNS_DAYS", 14),
    "dead_letters": env_int("RETENTION_DEAD_LETTERS_DAYS", 30),
}
# A dispatch lock outlives the longest task: a dispatcher that dies never silences its schedule
# for longer than this, and a slow run is never overlapped by the next tick before it.
DISPATCH_LOCK_TTL = env_int("DISPATCH_LOCK_TTL", 300)

# --- Market conditions -> priority (backend/market/conditions.py, backend/tasks/routing.py) ----------
# Volatile when |24 h change| or the stdev of recent bar-to-bar returns (both in %) reach these.
VOLATILITY_THRESHOLDS = {
    "stock": (env_float("VOLATILITY_STOCK_CHANGE_PCT", 4.0), env_float("VOLATILITY_STOCK_REALISED_PCT", 2.5)),
    "crypto": (env_float("VOLATILITY_CRYPTO_CHANGE_PCT", 8.0), env_float("VOLATILITY_CRYPTO_REALISED_PCT", 5.0)),
    "default": (env_float("VOLATILITY_CHANGE_PCT", 5.0), env_float("VOLATILITY_REALISED_PCT", 3.0)),
}
VOLATILITY_INTERVAL = env_str("VOLATILITY_INTERVAL", "1d")
if VOLATILITY_INTERVAL not in ("5m", "1h", "1d"):
    raise ImproperlyConfigured(f"VOLATILITY_INTERVAL must be 5m, 1h or 1d, not {VOLATILITY_INTERVAL!r}")
VOLATILITY_BARS = env_int("VOLATILITY_BARS", 20)
VOLATILITY_MIN_BARS = env_int("VOLATILITY_MIN_BARS", 5)
# Stocks outside their session: one snapshot this long after the close, then this slow cadence;
# in pre-market, its own cadence. Closed days fetch nothing unless an operator runs the dispatch now.
CLOSE_SNAPSHOT_DELAY_SECONDS = env_int("CLOSE_SNAPSHOT_DELAY_SECONDS", 120)
AFTER_HOURS_QUOTE_SECONDS = env_int("AFTER_HOURS_QUOTE_SECONDS", 3600)
PRE_MARKET_QUOTE_SECONDS = env_int("PRE_MARKET_QUOTE_SECONDS", 900)
DEMO_ASSETS_FILE = Path(env_str("DEMO_ASSETS_FILE", str(BASE_DIR / "market" / "fixtures" / "demo_assets.json")))
