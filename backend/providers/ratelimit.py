"""A per-provider request quota shared by every worker process, on the ``limits`` library.

Celery's own ``rate_limit`` counts per worker process (celery/celery#5732), so four processes
configured for "10/second" would send 40. Here every process counts in one place: Redis when a
URL is given (``limits``' Redis storage keeps each window in a Redis list updated by a Lua
script, so the check-and-take is atomic across processes), process memory otherwise (the
embedded default, where there is only one worker host anyway).

The strategy is the *moving window*: at most N acquisitions in ANY span of the window's length,
not N per calendar second, so a burst at the end of one second and the start of the next cannot
double the rate. It costs one list entry per allowed request, which is nothing at our quotas.

The limiter guards each HTTP request, not each client call, because one call can make several
requests (batches, Yahoo's cookie + crumb, Binance isolating a bad pair): :func:`guard_client`
installs it as an httpx request hook. A batched call announces how many requests it plans
(:func:`planned_requests`); the hook then takes several slots in one Redis round trip, at most what
the tightest quota allows in ``BURST_SHARE`` of its window, and spends them only within that same
share of the window. So a quota under 1 / ``BURST_SHARE`` requests per window (every default) still
takes one slot per request, and a generous one never lets real requests exceed it by more than that
share. Slots taken and not spent are lost, which only ever makes us slower than the quota.
Nothing here runs at import; ``limits`` itself is imported when the first limiter is built.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from backend.providers.errors import TransientProviderError

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)

# How long one sleep lasts at most while waiting for a slot: short enough that a slot freed by
# another process is noticed quickly, long enough not to hammer Redis.
DEFAULT_STEP = 0.05
_MIN_SLEEP = 0.002
# Slots taken at once are at most this share of the tightest quota, and spent within this share of its window.
BURST_SHARE = 0.05
# provider -> requests the current batched call still plans to send (see planned_requests).
_planned: ContextVar[dict[str, int] | None] = ContextVar("financehub_planned_requests", default=None)


class RateLimitedError(TransientProviderError):
    """Our shared limiter had no slot for this provider within the allowed wait; nothing was sent.

    Transient (a later retry finds a slot) but not the provider's fault, so a circuit breaker
    must not count it.
    """


class RateLimiterUnavailableError(TransientProviderError):
    """The limiter's storage (Redis) did not answer; nothing was sent rather than risk the quota."""


class RateLimiter:
    """Moving-window request quotas per provider, e.g. ``{"binance": "10/second"}``.

    ``rates`` values are ``limits`` strings; several limits may be joined with ``;``
    (``"5/minute;25/day"``) and all of them must allow a request. A provider without an
    entry is not limited.
    """

    def __init__(
        self,
        storage_uri: str | None,
        rates: Mapping[str, str],
        *,
        namespace: str = "financehub",
        step: float = DEFAULT_STEP,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        # Imported here, not at module import: the providers package must stay light.
        from limits import parse_many
        from limits.storage import storage_from_string
        from limits.strategies import MovingWindowRateLimiter

        self._items: dict[str, list[Any]] = {}
        for provider, rate in rates.items():
            if not rate or not rate.strip():
                continue
            try:
                self._items[provider] = parse_many(rate)
            except ValueError:
                raise ValueError(f"rate limit for {provider!r} is not a limits string: {rate!r}") from None
        uri = storage_uri or "memory://"
        options: dict[str, Any] = {"wrap_exceptions": True}
        if uri.startswith(("redis://", "rediss://")):
            # Fail fast when Redis is unreachable instead of hanging a task on a dead socket.
            options.update(socket_timeout=2, socket_connect_timeout=2)
        self._storage = storage_from_string(uri, **options)
        self._strategy = MovingWindowRateLimiter(self._storage)
        self._namespace = namespace
        self._step = step
        self._sleep = sleep
        self._monotonic = monotonic
        self.shared = not uri.startswith("memory://")

    def __repr__(self) -> str:
        rates = {p: ";".join(str(i) for i in items) for p, items in self._items.items()}
        return f"RateLimiter(shared={self.shared}, rates={rates})"

    def limited(self, provider: str) -> bool:
        """Whether ``provider`` has a quota here."""
        return provider in self._items

    def burst(self, provider: str) -> tuple[int, float]:
        """How many slots may be taken at once for ``provider`` and for how many seconds they stay spendable.

        ``BURST_SHARE`` of the tightest quota (at least one slot) and of that quota's window.
        """
        items = self._items.get(provider)
        if not items:
            return 0, 0.0
        tightest = min(items, key=lambda item: item.amount / item.get_expiry())
        window = float(tightest.get_expiry())
        return max(1, int(min(item.amount * BURST_SHARE for item in items))), window * BURST_SHARE

    def acquire(self, provider: str, *, timeout: float, cost: int = 1) -> None:
        """Take ``cost`` request slots for ``provider`` at once, waiting up to ``timeout`` seconds for them.

        Raises ``RateLimitedError`` (with ``retry_after`` = the wait still needed) as soon as it is
        clear the slots will not come in time, so a task gives up early instead of sleeping in vain.
        """
        items = self._items.get(provider)
        if not items:
            return
        deadline = self._monotonic() + max(timeout, 0.0)
        while True:
            wait = self._try_take(provider, items, cost)
            if wait <= 0:
                return
            left = deadline - self._monotonic()
            if wait > left:
                logger.info("rate limit for %s: next slot in %.3fs, over the %.3fs allowed", provider, wait, left)
                raise RateLimitedError(
                    f"{provider}: local rate limit reached (next slot in {wait:.2f}s)",
                    provider=provider,
                    retry_after=round(wait, 3),
                )
            self._sleep(max(min(wait, self._step), _MIN_SLEEP))

    def reset(self, provider: str) -> None:
        """Forget the recorded requests of ``provider`` (tests and operators)."""
        for item in self._items.get(provider, []):
            self._call(provider, self._strategy.clear, item, self._namespace, provider)

    def _try_take(self, provider: str, items: list[Any], cost: int = 1) -> float:
        """Take ``cost`` slots in every window (0.0) or return the seconds until the fullest one frees one.

        Windows are taken one after the other: a later full window leaves the earlier ones charged,
        which only ever makes us slower than the quota, never faster.
        """
        for item in items:
            if self._call(provider, self._hit, item, provider, cost):
                continue
            reset_at, _remaining = self._call(
                provider, self._strategy.get_window_stats, item, self._namespace, provider
            )
            # reset_at is wall-clock epoch seconds: the oldest entry of the window plus its length.
            return max(float(reset_at) - time.time(), _MIN_SLEEP)
        return 0.0

    def _hit(self, item: Any, provider: str, cost: int) -> bool:
        return self._strategy.hit(item, self._namespace, provider, cost=cost)

    @staticmethod
    def _call(provider: str, fn: Callable[..., Any], *args: Any) -> Any:
        from limits.errors import StorageError

        try:
            return fn(*args)
        except StorageError as exc:
            # Without the shared count we cannot tell whether a request is within quota; a provider
            # ban (Binance answers 418 to abusers) costs more than a retried task.
            raise RateLimiterUnavailableError(
                f"{provider}: rate limiter storage unavailable ({type(exc.storage_error).__name__})",
                provider=provider,
            ) from None


@contextmanager
def planned_requests(provider: str, count: int) -> Iterator[None]:
    """Within this block ``provider``'s guarded client plans up to ``count`` requests (one batched call)."""
    plans = dict(_planned.get() or {})
    plans[provider] = max(count, 0)
    token = _planned.set(plans)
    try:
        yield
    finally:
        _planned.reset(token)


class _SlotHook:
    """The request hook of one guarded client: a slot per request, several at once for a planned call."""

    def __init__(self, limiter: RateLimiter, provider: str, timeout: float, clock: Callable[[], float]) -> None:
        self._limiter = limiter
        self._provider = provider
        self._timeout = timeout
        self._clock = clock
        self._prepaid = 0
        self._spend_until = 0.0
        self._lock = threading.Lock()  # threads of one process may share the client

    def __call__(self, request: httpx.Request) -> None:
        with self._lock:
            if self._prepaid > 0 and self._clock() <= self._spend_until:
                self._prepaid -= 1
                self._note_sent()
                return
            self._prepaid = 0
        plans = _planned.get() or {}
        burst, spendable = self._limiter.burst(self._provider)
        cost = max(1, min(plans.get(self._provider, 1), burst))
        self._limiter.acquire(self._provider, timeout=self._timeout, cost=cost)
        with self._lock:
            self._prepaid, self._spend_until = cost - 1, self._clock() + spendable
        self._note_sent()

    def _note_sent(self) -> None:
        plans = _planned.get()
        if plans and plans.get(self._provider, 0) > 0:
            plans[self._provider] -= 1


def guard_client(
    http: httpx.Client,
    limiter: RateLimiter,
    provider: str,
    *,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
) -> httpx.Client:
    """Make every request sent through ``http`` take a slot of ``provider``'s quota first.

    An httpx request hook runs inside ``Client.send`` before any byte goes out; what it raises
    leaves ``send`` unchanged, so a ``RateLimitedError`` reaches the caller as the transient error
    it is. Inside :func:`planned_requests` it takes the call's slots in few round trips (module
    docstring). Returns ``http`` for chaining.
    """
    if not limiter.limited(provider):
        return http
    hooks = dict(http.event_hooks)
    hooks["request"] = [*hooks.get("request", []), _SlotHook(limiter, provider, timeout, clock)]
    http.event_hooks = hooks
    return http


def window_max(timestamps: list[float], window: float = 1.0) -> int:
    """The largest number of ``timestamps`` inside any half-open span ``[t, t + window)``.

    Used by tests and benchmarks to measure a rate from a request log.
    """
    ordered = sorted(timestamps)
    best = 0
    start = 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= window - 1e-9:
            start += 1
        best = max(best, end - start + 1)
    return best
