"""A circuit breaker per provider, its state shared by every worker process when Redis is there.

Closed: calls go through; each *transient* failure (timeout, 5xx, 429, throttle body) adds one to
a counter and any answer from the provider resets it. After ``failure_threshold`` consecutive
transient failures the circuit opens: for ``reset_seconds`` calls fail at once with
``CircuitOpenError`` and the provider sees no request. Then it is half-open: exactly one caller,
in whichever process, wins the probe (a Redis ``SET NX`` with a TTL, so a prober that dies frees
it); a success closes the circuit, a transient failure opens it for another cool-down.

Only transient faults count. A permanent error (unknown symbol, bad key, malformed reply) proves
the provider is up and answering, so it counts as an answer: a bad symbol in a batch must never
cut off a healthy provider. Our own rate limiter refusing a slot says nothing about the provider
and counts as neither.

State lives in a small Redis hash per provider (``failures``, ``opened_at``) when a Redis URL is
given, in process memory otherwise. pybreaker's ``CircuitRedisStorage`` was the alternative; its
half-open state lets every process that sees the timeout pass one call through, where we want one
probe in total, and its failure counter is not updated atomically across processes.

If Redis cannot be reached the breaker fails *open* for calls (logs and lets them through): it is
a protection, and losing it must not stop the data.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from backend.providers.errors import CircuitOpenError, ProviderError, ProviderPausedError, TransientProviderError
from backend.providers.pauses import MemoryPauseStore, PauseBoard, RedisPauseStore
from backend.providers.ratelimit import RateLimitedError, RateLimiterUnavailableError

logger = logging.getLogger(__name__)

T = TypeVar("T")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
# Our own refusals: they say nothing about the provider's health.
_NOT_THE_PROVIDERS_FAULT = (CircuitOpenError, ProviderPausedError, RateLimitedError, RateLimiterUnavailableError)
# Forget a provider's failure history after a day without news; a success deletes it at once.
_STATE_TTL_SECONDS = 86_400


@dataclass(frozen=True, slots=True)
class BreakerState:
    """A snapshot of one provider's circuit (for metrics, admin and tests)."""

    provider: str
    state: str
    failures: int
    opened_at: float | None
    retry_after: float | None = None


class BreakerStore(Protocol):
    """Where the counters live; every method is atomic for its provider."""

    # The storage faults the breaker survives (logged, the call let through); anything else is a bug.
    errors: tuple[type[Exception], ...]

    def snapshot(self, provider: str) -> tuple[int, float | None]:
        """(consecutive failures, opened_at epoch seconds or None when closed)."""
        ...

    def claim_probe(self, provider: str, ttl: float) -> bool:
        """Take the single half-open probe for ``ttl`` seconds; False if someone holds it."""
        ...

    def release_probe(self, provider: str) -> None:
        """Give the probe back without a verdict."""
        ...

    def record_success(self, provider: str) -> None:
        """Close the circuit: zero failures, no opened_at, no probe."""
        ...

    def record_failure(self, provider: str, *, threshold: int, now: float) -> int:
        """Add one failure; at ``threshold`` or more set opened_at = now and free the probe."""
        ...


class MemoryBreakerStore:
    """Breaker state in this process only (the embedded default)."""

    errors: tuple[type[Exception], ...] = ()

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, tuple[int, float | None]] = {}
        self._probes: dict[str, float] = {}
        self._clock = clock

    def snapshot(self, provider: str) -> tuple[int, float | None]:
        with self._lock:
            return self._state.get(provider, (0, None))

    def claim_probe(self, provider: str, ttl: float) -> bool:
        now = self._clock()
        with self._lock:
            if self._probes.get(provider, 0.0) > now:
                return False
            self._probes[provider] = now + ttl
            return True

    def release_probe(self, provider: str) -> None:
        with self._lock:
            self._probes.pop(provider, None)

    def record_success(self, provider: str) -> None:
        with self._lock:
            self._state.pop(provider, None)
            self._probes.pop(provider, None)

    def record_failure(self, provider: str, *, threshold: int, now: float) -> int:
        with self._lock:
            failures, opened_at = self._state.get(provider, (0, None))
            failures += 1
            if failures >= threshold:
                opened_at = now
                self._probes.pop(provider, None)
            self._state[provider] = (failures, opened_at)
            return failures


# KEYS[1] = state hash, KEYS[2] = probe key; ARGV = threshold, now, ttl.
_RECORD_FAILURE = """
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if failures >= tonumber(ARGV[1]) then
    redis.call('HSET', KEYS[1], 'opened_at', ARGV[2])
    redis.call('DEL', KEYS[2])
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return failures
"""


class RedisBreakerStore:
    """Breaker state in Redis, shared by every process using the same URL and prefix.

    Keys: ``<prefix>:breaker:<provider>`` (hash: failures, opened_at) and
    ``<prefix>:breaker:<provider>:probe`` (the half-open probe, with a TTL).
    """

    def __init__(self, url: str, *, prefix: str = "financehub") -> None:
        import redis  # imported on first build, never at module import

        self.errors = (redis.RedisError,)
        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._prefix = prefix
        self._record_failure = self._redis.register_script(_RECORD_FAILURE)

    def _keys(self, provider: str) -> tuple[str, str]:
        key = f"{self._prefix}:breaker:{provider}"
        return key, key + ":probe"

    def snapshot(self, provider: str) -> tuple[int, float | None]:
        failures, opened_at = self._redis.hmget(self._keys(provider)[0], "failures", "opened_at")
        return int(failures or 0), float(opened_at) if opened_at else None

    def claim_probe(self, provider: str, ttl: float) -> bool:
        return bool(self._redis.set(self._keys(provider)[1], "1", nx=True, px=max(int(ttl * 1000), 1)))

    def release_probe(self, provider: str) -> None:
        self._redis.delete(self._keys(provider)[1])

    def record_success(self, provider: str) -> None:
        self._redis.delete(*self._keys(provider))

    def record_failure(self, provider: str, *, threshold: int, now: float) -> int:
        return int(
            self._record_failure(keys=list(self._keys(provider)), args=[threshold, repr(now), _STATE_TTL_SECONDS])
        )


class CircuitBreaker:
    """Opens a provider's circuit after ``failure_threshold`` consecutive transient failures.

    ``probe_timeout`` bounds how long a half-open probe may hold the slot before another caller
    may probe (it should exceed the longest provider call: HTTP timeout times requests per call).

    ``pauses`` is the board of provider pauses that travels with the breaker (same storage), so
    every chain built on this breaker honours and records "come back later" answers.
    """

    def __init__(
        self,
        store: BreakerStore | None = None,
        *,
        failure_threshold: int = 5,
        reset_seconds: float = 60.0,
        probe_timeout: float = 60.0,
        clock: Callable[[], float] = time.time,
        pauses: PauseBoard | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if reset_seconds <= 0 or probe_timeout <= 0:
            raise ValueError("reset_seconds and probe_timeout must be positive")
        self._store: BreakerStore = store if store is not None else MemoryBreakerStore(clock)
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self.probe_timeout = probe_timeout
        self._clock = clock
        self.pauses = pauses if pauses is not None else PauseBoard(clock=clock)

    def __repr__(self) -> str:
        store = type(self._store).__name__
        return f"CircuitBreaker({store}, threshold={self.failure_threshold}, reset={self.reset_seconds}s)"

    def state(self, provider: str) -> BreakerState:
        """Where ``provider``'s circuit stands now."""
        failures, opened_at = self._store.snapshot(provider)
        if opened_at is None:
            return BreakerState(provider, CLOSED, failures, None)
        left = opened_at + self.reset_seconds - self._clock()
        if left > 0:
            return BreakerState(provider, OPEN, failures, opened_at, retry_after=left)
        return BreakerState(provider, HALF_OPEN, failures, opened_at, retry_after=0.0)

    def call(self, provider: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` through ``provider``'s circuit; raises ``CircuitOpenError`` without calling it
        while the circuit is open (or another caller holds the half-open probe)."""
        probing = self._before_call(provider)
        try:
            result = fn(*args, **kwargs)
        except _NOT_THE_PROVIDERS_FAULT:
            self._inconclusive(provider, probing)
            raise
        except TransientProviderError:
            self._failure(provider, probing)
            raise
        except ProviderError:
            self._success(provider, probing)  # a permanent error is an answer from a live provider
            raise
        except BaseException:
            self._inconclusive(provider, probing)  # our bug or a time limit: no verdict on the provider
            raise
        self._success(provider, probing)
        return result

    # --- transitions ----------------------------------------------------------------------------

    def _before_call(self, provider: str) -> bool:
        """Return whether this call is the half-open probe; raise when the circuit is open."""
        state = self._guard(provider, self._store.snapshot, provider, default=None)
        if state is None:
            return False  # storage unreachable: fail open, see the module docstring
        failures, opened_at = state
        if opened_at is None:
            return False
        left = opened_at + self.reset_seconds - self._clock()
        if left > 0:
            raise CircuitOpenError(
                f"{provider}: circuit open after {failures} consecutive failures ({left:.1f}s left)",
                provider=provider,
                retry_after=round(left, 3),
            )
        if self._guard(provider, self._store.claim_probe, provider, self.probe_timeout, default=True):
            logger.info("breaker for %s is half-open; this call is the probe", provider)
            return True
        raise CircuitOpenError(
            f"{provider}: circuit half-open, another call is probing", provider=provider, retry_after=1.0
        )

    def _success(self, provider: str, probing: bool) -> None:
        failures, opened_at = self._guard(provider, self._store.snapshot, provider, default=(0, None))
        if failures or opened_at is not None:
            self._guard(provider, self._store.record_success, provider)
            if opened_at is not None or probing:
                logger.info("breaker for %s closed: the provider answered", provider)

    def _failure(self, provider: str, probing: bool) -> None:
        failures = self._guard(
            provider,
            self._store.record_failure,
            provider,
            threshold=self.failure_threshold,
            now=self._clock(),
            default=0,
        )
        if probing or failures == self.failure_threshold:
            logger.warning(
                "breaker for %s opened for %ss after %s consecutive failures", provider, self.reset_seconds, failures
            )

    def _inconclusive(self, provider: str, probing: bool) -> None:
        if probing:
            self._guard(provider, self._store.release_probe, provider)

    def _guard(self, provider: str, fn: Callable[..., Any], *args: Any, default: Any = None, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self._store.errors as exc:
            # Storage faults must not turn into provider faults; the breaker degrades to letting calls through.
            logger.warning("breaker storage for %s failed (%s); state not updated", provider, type(exc).__name__)
            return default


def build_breaker(
    redis_url: str | None,
    *,
    prefix: str = "financehub",
    failure_threshold: int = 5,
    reset_seconds: float = 60.0,
    probe_timeout: float = 60.0,
) -> CircuitBreaker:
    """A breaker (and its pause board) on Redis when ``redis_url`` is given, in process memory otherwise."""
    store: BreakerStore = RedisBreakerStore(redis_url, prefix=prefix) if redis_url else MemoryBreakerStore()
    pauses = PauseBoard(RedisPauseStore(redis_url, prefix=prefix) if redis_url else MemoryPauseStore())
    return CircuitBreaker(
        store,
        failure_threshold=failure_threshold,
        reset_seconds=reset_seconds,
        probe_timeout=probe_timeout,
        pauses=pauses,
    )
