"""Provider pauses shared by every worker: "come back at T" from a provider stops all our callers.

When a provider answers 429/418 with ``Retry-After``, or with a throttle body (Alpha Vantage
``Note``/``Information``, CoinMarketCap 1008-1011), the client raises ``ProviderThrottledError``
and whoever sees it records a pause here: until that moment every call to the provider, from any
worker process, fails at once with ``ProviderPausedError`` (transient, no HTTP request) and the
provider chain fails over. Binance escalates ignored 429s into 418 IP bans, and Alpha Vantage's
daily quota stays spent until UTC midnight, so pausing only the task that saw the answer is not
enough.

A pause only ever grows: a later "until" replaces an earlier one, never the other way round.
State is one Redis key per provider (``<prefix>:pause:<provider>`` = until, epoch seconds, expiring
at that moment) when a Redis URL is given, process memory otherwise. If Redis cannot be reached
the board fails open (logs, lets calls through), like the circuit breaker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from backend.providers.errors import ProviderPausedError

logger = logging.getLogger(__name__)

# Longest pause we honour: a provider asking for more (a typo, a hostile header) gets this.
MAX_PAUSE_SECONDS = 32 * 86_400


class PauseStore(Protocol):
    """Where pauses live; ``extend`` is atomic per provider."""

    errors: tuple[type[Exception], ...]

    def until(self, provider: str) -> float | None:
        """The epoch second the provider's pause ends, if one was recorded (may be past)."""
        ...

    def extend(self, provider: str, until: float) -> float:
        """Make the pause end no earlier than ``until``; returns the pause's end after the update."""
        ...

    def clear(self, provider: str) -> None:
        """Forget the provider's pause."""
        ...

    def all(self) -> dict[str, float]:
        """Every recorded pause, provider -> until."""
        ...


class MemoryPauseStore:
    """Pauses in this process only (the embedded default)."""

    errors: tuple[type[Exception], ...] = ()

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until: dict[str, float] = {}

    def until(self, provider: str) -> float | None:
        with self._lock:
            return self._until.get(provider)

    def extend(self, provider: str, until: float) -> float:
        with self._lock:
            self._until[provider] = max(until, self._until.get(provider, 0.0))
            return self._until[provider]

    def clear(self, provider: str) -> None:
        with self._lock:
            self._until.pop(provider, None)

    def all(self) -> dict[str, float]:
        with self._lock:
            return dict(self._until)


# KEYS[1] = pause key; ARGV[1] = until (epoch seconds, text), ARGV[2] = until in epoch milliseconds.
_EXTEND = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then
    redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
    return ARGV[1]
end
return tostring(current)
"""


class RedisPauseStore:
    """Pauses in Redis, shared by every process using the same URL and prefix."""

    def __init__(self, url: str, *, prefix: str = "financehub") -> None:
        import redis  # imported on first build, never at module import

        self.errors = (redis.RedisError,)
        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._prefix = f"{prefix}:pause:"
        self._extend = self._redis.register_script(_EXTEND)

    def until(self, provider: str) -> float | None:
        raw = self._redis.get(self._prefix + provider)
        return float(raw) if raw else None

    def extend(self, provider: str, until: float) -> float:
        return float(self._extend(keys=[self._prefix + provider], args=[repr(until), int(until * 1000) + 1]))

    def clear(self, provider: str) -> None:
        self._redis.delete(self._prefix + provider)

    def all(self) -> dict[str, float]:
        found: dict[str, float] = {}
        for key in self._redis.scan_iter(match=self._prefix + "*", count=100):
            name = key.decode() if isinstance(key, bytes) else key
            raw = self._redis.get(name)
            if raw:
                found[name.removeprefix(self._prefix)] = float(raw)
        return found


class PauseBoard:
    """Record and check provider pauses (see the module docstring)."""

    def __init__(self, store: PauseStore | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self._store: PauseStore = store if store is not None else MemoryPauseStore()
        self._clock = clock

    def __repr__(self) -> str:
        return f"PauseBoard({type(self._store).__name__})"

    def pause(self, provider: str, seconds: float, *, reason: str = "") -> float:
        """Pause ``provider`` for ``seconds`` from now (capped); returns the pause's end, epoch seconds."""
        seconds = min(max(seconds, 0.0), MAX_PAUSE_SECONDS)
        until = self._clock() + seconds
        try:
            until = self._store.extend(provider, until)
        except self._store.errors as exc:
            logger.warning("pause store failed for %s (%s); pause not shared", provider, type(exc).__name__)
            return until
        logger.warning(
            "provider %s paused for every worker until %s (%s)",
            provider,
            datetime.fromtimestamp(until, tz=UTC).isoformat(timespec="seconds"),
            reason or "it asked for a wait",
        )
        return until

    def remaining(self, provider: str) -> float:
        """Seconds left in ``provider``'s pause; 0.0 when it is not paused (or the store is down)."""
        try:
            until = self._store.until(provider)
        except self._store.errors as exc:
            logger.warning("pause store failed for %s (%s); treated as not paused", provider, type(exc).__name__)
            return 0.0
        return max((until or 0.0) - self._clock(), 0.0)

    def check(self, provider: str) -> None:
        """Raise ``ProviderPausedError`` (transient, with ``retry_after``) while ``provider`` is paused."""
        left = self.remaining(provider)
        if left > 0:
            raise ProviderPausedError(
                f"{provider}: paused for {left:.0f}s more (the provider asked us to wait)",
                provider=provider,
                retry_after=round(left, 3),
            )

    def clear(self, provider: str) -> None:
        """Lift ``provider``'s pause now (operators and tests)."""
        try:
            self._store.clear(provider)
        except self._store.errors as exc:
            logger.warning("pause store failed for %s (%s); pause not cleared", provider, type(exc).__name__)

    def paused(self) -> dict[str, datetime]:
        """Providers paused right now -> when their pause ends (UTC); for metrics and admin."""
        try:
            entries = self._store.all()
        except self._store.errors as exc:
            logger.warning("pause store failed (%s); no pauses listed", type(exc).__name__)
            return {}
        now = self._clock()
        return {p: datetime.fromtimestamp(u, tz=UTC) for p, u in sorted(entries.items()) if u > now}


def build_pause_board(redis_url: str | None, *, prefix: str = "financehub") -> PauseBoard:
    """A pause board on Redis when ``redis_url`` is given, in process memory otherwise."""
    return PauseBoard(RedisPauseStore(redis_url, prefix=prefix) if redis_url else MemoryPauseStore())
