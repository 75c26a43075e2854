"""What every provider client shares: an injected httpx client, a base URL, an optional key, a clock,
the per-request pause gate and batched quote fetching with bisection of unknown symbols."""

from __future__ import annotations

import contextvars
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx

from backend.providers.errors import (
    InvalidKeyError,
    PermanentProviderError,
    ProviderError,
    ProviderPausedError,
    ProviderThrottledError,
    TransientProviderError,
    UnknownSymbolError,
)
from backend.providers.http import check_base_url, request_json, strip_control
from backend.providers.models import Failed, Quote, QuoteBatch, Rejected
from backend.providers.pauses import PauseBoard
from backend.providers.ratelimit import RateLimitedError, RateLimiterUnavailableError, planned_requests
from backend.providers.validation import Clock, chunks, split_symbols, utc_now

logger = logging.getLogger(__name__)

BatchFetch = Callable[[Sequence[str]], tuple[list[Quote], list[Rejected]]]
# After one of these, every further request of the same call would be refused too: stop sending.
_STOP_SENDING = (ProviderThrottledError, ProviderPausedError, RateLimitedError, RateLimiterUnavailableError)


@dataclass
class _Progress:
    """What one batched quote call has resolved so far."""

    quotes: list[Quote] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)
    errors: list[ProviderError] = field(default_factory=list)
    answered: bool = False  # the provider said something about some symbol (data or a refusal)
    stop: TransientProviderError | None = None

    def fail(self, batch: Sequence[str], exc: TransientProviderError) -> None:
        reason = f"{type(exc).__name__}: {strip_control(exc, 160)}"
        self.failed.extend([Failed(symbol, reason, exc.retry_after) for symbol in batch])  # one list: one step


class ProviderClient:
    """Base of the vendor clients; subclasses name themselves and their per-request batch limit.

    The key is held, never shown: ``repr`` says only whether one is set.
    """

    name: ClassVar[str]
    batch_limit: ClassVar[int]

    def __init__(
        self,
        http: httpx.Client,
        *,
        base_url: str,
        api_key: str | None = None,
        clock: Clock = utc_now,
        pauses: PauseBoard | None = None,
    ) -> None:
        self._http = http
        self._base_url = check_base_url(base_url)
        self._api_key = api_key
        self._clock = clock
        self._pauses = pauses
        self._call_checked = False
        self._concurrency = 1

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._base_url!r}, key={'set' if self._api_key else 'none'})"

    def send_concurrently(self, limit: int) -> None:
        """Let one batched quote call have up to ``limit`` requests in flight (after its first, which goes
        alone). A provider answers in tens to hundreds of milliseconds: waiting for each in turn leaves
        the worker idle; the shared rate limit still holds every request to the quota."""
        self._concurrency = max(1, int(limit))

    def use_pauses(self, pauses: PauseBoard) -> None:
        """Check and record provider pauses on ``pauses`` for every request (a chain hands its board over)."""
        if self._pauses is None:
            self._pauses = pauses

    @contextmanager
    def _gate(self) -> Iterator[None]:
        """Around one request and the reading of its body: refuse while paused, record a pause asked for.

        Inside a batched quote call the pause was checked once for the whole call (``_quotes_in_batches``).
        """
        if self._pauses is not None and not self._call_checked:
            self._pauses.check(self.name)
        try:
            yield
        except ProviderThrottledError as exc:
            if self._pauses is not None and exc.retry_after is not None:
                self._pauses.pause(self.name, exc.retry_after, reason=strip_control(exc, 120))
            raise

    def _get_json(self, url: str, **options: Any) -> Any:
        """One GET through the pause gate; ``options`` go to :func:`backend.providers.http.request_json`."""
        with self._gate():
            return request_json(self._http, "GET", url, provider=self.name, **options)

    def _quotes_in_batches(self, symbols: Sequence[str], *, pattern: re.Pattern[str], fetch: BatchFetch) -> QuoteBatch:
        """Refuse malformed identifiers, then call ``fetch`` once per ``batch_limit`` of the rest.

        ``fetch`` does ONE request. When it raises ``UnknownSymbolError`` (the provider failed the whole
        request because of a bad symbol in it) the batch is halved and each half asked again, so k bad
        symbols among n cost at most about 2*k*log2(n) extra requests and every good sub-batch is kept.
        A transient fault fails only the symbols it left unresolved (``QuoteBatch.failed``); after a
        throttle, a pause, a refused rate-limit slot, or a fault before the provider answered anything,
        nothing more is sent in this call. A call that got no answer at all re-raises its first error,
        so breaker and chain see a failed provider (and fail over at the cost of one request).
        """
        valid, refused = split_symbols(symbols, pattern=pattern)
        progress = _Progress()
        batches = chunks(valid, self.batch_limit)
        # One pause check and as few rate-limit round trips as the quota allows for the whole call; a
        # pause this call runs into still stops it (_STOP_SENDING), and bisection's extra requests take
        # their slots one by one.
        if self._pauses is not None and batches:
            self._pauses.check(self.name)
        self._call_checked = True
        try:
            with planned_requests(self.name, len(batches)):
                self._resolve_all(batches, fetch, progress)
        finally:
            self._call_checked = False
        if not progress.answered and progress.errors:
            raise progress.errors[0]
        return QuoteBatch(
            quotes=tuple(progress.quotes), rejected=tuple(refused + progress.rejected), failed=tuple(progress.failed)
        )

    def _resolve_all(self, batches: Sequence[Sequence[str]], fetch: BatchFetch, progress: _Progress) -> None:
        """Resolve every batch: the first alone (a provider that is down costs one request, then the call
        stops), the rest up to ``send_concurrently``'s limit at a time, each in a copy of this context
        (the call's planned rate-limit slots)."""
        if not batches:
            return
        self._resolve(batches[0], fetch, progress)
        rest = batches[1:]
        if self._concurrency == 1 or len(rest) < 2 or progress.stop is not None:
            for batch in rest:
                self._resolve(batch, fetch, progress)
            return
        with ThreadPoolExecutor(min(self._concurrency, len(rest)), thread_name_prefix=f"{self.name}-batch") as pool:
            futures = [
                pool.submit(contextvars.copy_context().run, self._resolve, batch, fetch, progress) for batch in rest
            ]
            for future in futures:
                future.result()  # an InvalidKeyError goes on up: no request of this call can succeed

    def _resolve(
        self, batch: Sequence[str], fetch: BatchFetch, progress: _Progress, *, bad: UnknownSymbolError | None = None
    ) -> bool:
        """Serve ``batch`` with one request, bisecting on an unknown symbol; whether every symbol was served.

        ``bad`` is passed when ``batch`` is known to hold an unknown symbol (its parent failed for one
        and its sibling was clean): it is split without asking again, and a single symbol is refused.
        """
        if progress.stop is not None:
            progress.fail(batch, progress.stop)
            return False
        try:
            if bad is not None:
                raise bad
            got, refused = fetch(batch)
        except UnknownSymbolError as exc:
            progress.answered = True
            if len(batch) == 1:
                progress.rejected.append(Rejected(batch[0], strip_control(exc, 200), unknown=True))
                return False
            if bad is None:
                logger.info("%s refused a batch of %s for an unknown symbol; bisecting it", self.name, len(batch))
            middle = len(batch) // 2
            left_was_clean = self._resolve(batch[:middle], fetch, progress)
            # The bad symbol is not in a clean left half, so it is in the right one: skip asking for it whole.
            self._resolve(batch[middle:], fetch, progress, bad=exc if left_was_clean else None)
            return False
        except InvalidKeyError:
            raise  # no request of this call can succeed; the chain moves on to the next provider
        except TransientProviderError as exc:
            progress.errors.append(exc)
            progress.fail(batch, exc)
            # A provider that has not answered once in this call is likely down: fail over now rather
            # than send every remaining batch into the same fault.
            if isinstance(exc, _STOP_SENDING) or not progress.answered:
                progress.stop = exc
            return False
        except PermanentProviderError as exc:
            # The reply was complete but unusable (e.g. not the shape we know): refuse this batch only.
            progress.errors.append(exc)
            reason = f"{type(exc).__name__}: {strip_control(exc, 160)}"
            progress.rejected.extend([Rejected(symbol, reason) for symbol in batch])
            return False
        progress.answered = True
        progress.quotes.extend(got)
        progress.rejected.extend(refused)
        return not refused
