"""Quote refresh: plan provider-sized batches per asset class, then fetch and store one batch."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

from backend.common.logsafe import escape
from backend.market.models import Asset
from backend.market.quarantine import record_verdicts
from backend.market.store import store_bars, store_quotes
from backend.market.symbols import check_asset_class, check_symbols
from backend.providers.errors import (
    AllProvidersFailedError,
    ProviderFailure,
    ProviderSkippedError,
    TransientProviderError,
)
from backend.providers.models import Failed, QuoteBatch
from backend.providers.verdicts import earliest_wait

from .sources import AssetIds, AssetSource, quote_source

logger = logging.getLogger(__name__)


def plan_quote_batches(asset_class: str, batch_size: int) -> list[list[str]]:
    """Symbols of every active asset of ``asset_class``, split into batches of ``batch_size``."""
    assets = Asset.objects.refreshable().of_class(asset_class)
    symbols = list(assets.order_by("symbol").values_list("symbol", flat=True))
    return [symbols[i : i + batch_size] for i in range(0, len(symbols), batch_size)]


@dataclass(frozen=True)
class RefreshSummary:
    """What one batch refresh did, small enough to be a task result.

    Every requested symbol is in exactly one of ``stored``, ``rejected`` (permanent, with the reason:
    a provider's refusal, or a quote the store cannot hold), ``failed`` (transient, with the reason:
    retry these), ``skipped`` (not an active, unquarantined asset of the class: nothing to fetch) or
    ``gone`` (the asset was deleted while the batch ran: nothing left to store it for).
    """

    asset_class: str
    requested: int
    stored: list[str]
    stored_bars: int
    rejected: dict[str, str]
    failed: dict[str, str]
    skipped: list[str]
    quarantined: list[str]
    source: str
    # Seconds until the first provider can take the failed symbols again; None: after the backoff.
    retry_after: float | None = None
    # Every provider that failed during the call when symbols are left failed (their dead letter names them).
    provider_failures: tuple[ProviderFailure, ...] = ()
    gone: list[str] = field(default_factory=list)
    # True when no provider was sent a request for any failed symbol: every one that could serve them
    # was skipped (paused, circuit open). Such a retry asked nobody (``deferral`` does not count it).
    asked_nobody: bool = False

    @property
    def stored_quotes(self) -> int:
        """How many quotes were stored."""
        return len(self.stored)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {**asdict(self), "stored_quotes": self.stored_quotes}


def refresh_quotes(asset_class: str, symbols: list[str]) -> RefreshSummary:
    """Fetch quotes for one batch and upsert them; every symbol ends stored, rejected, failed, skipped or gone.

    Unknown, inactive, quarantined or other-class symbols are skipped. ``InvalidInputError`` before any
    query when the input is not an asset class and a list of symbols.
    """
    asset_class, symbols = check_asset_class(asset_class), check_symbols(symbols)
    # Only what the batch reads: provider ids for the chain, the key for the upserts and verdicts.
    refreshable = Asset.objects.refreshable().of_class(asset_class).filter(symbol__any_of=symbols)
    rows = refreshable.values_list("pk", "symbol", "binance_symbol", "coingecko_id", "unknown_streak")
    assets = {row[1]: AssetIds(*row) for row in rows}
    skipped = sorted(set(symbols) - assets.keys())
    if skipped:
        logger.warning("skipping %d symbols not refreshable in class %s: %s", len(skipped), asset_class, skipped[:10])
    source = quote_source(asset_class)
    batch, provider_failures = _fetch(source, [assets[symbol] for symbol in sorted(assets)])
    quotes = [q for q in batch.quotes if q.symbol in assets]
    served = {q.symbol for q in quotes}
    rejected = {r.symbol: r.reason for r in batch.rejected if r.symbol in assets and r.symbol not in served}
    for symbol, reason in sorted(rejected.items()):
        logger.warning("provider %s rejected %s: %s", source.name, symbol, reason)
    ids = {symbol: asset.pk for symbol, asset in assets.items()}
    written, bars = store_quotes(ids, quotes), store_bars(ids, batch.bars)
    # An asset deleted while the batch ran is an outcome of its own; a quote the store could not hold
    # is refused, with the store's reason, like a provider's refusal.
    gone = sorted(str(symbol) for symbol in written.gone | bars.gone)
    rejected |= {str(s): f"the store refused the quote: {reason}" for s, reason in written.refused.items()}
    for symbol in gone:
        rejected.pop(symbol, None)
    stored = sorted(served - rejected.keys() - set(gone))
    failed = {f.symbol: f.reason for f in batch.failed if f.symbol in assets}
    # A symbol the chain left out of all three is not silently dropped: it failed, and is retried.
    for symbol in assets.keys() - set(stored) - rejected.keys() - set(gone):
        failed.setdefault(symbol, "no outcome from the provider chain")
    for symbol in (*stored, *rejected, *gone):
        failed.pop(symbol, None)
    if failed:
        logger.warning(
            "%d of %d %s symbols failed transiently: %s", len(failed), len(symbols), asset_class, sorted(failed)[:10]
        )
    stored_bars = bars.written
    unknown = {r.symbol: r.reason for r in batch.rejected if r.unknown and r.symbol in rejected}
    streaks = {symbol: asset.unknown_streak for symbol, asset in assets.items()}
    quarantined = record_verdicts(ids, stored=stored, unknown=unknown, by="quotes.fetch", streaks=streaks)
    logger.info("stored %d quotes and %d bars for %s from %s", len(stored), stored_bars, asset_class, source.name)
    # When each failed symbol may be asked again (a symbol the chain left without a record: after the backoff).
    named = {f.symbol: f.retry_after for f in batch.failed}
    waits = [named.get(symbol) for symbol in failed]
    # A symbol the chain said nothing about counts as asked: only a typed "skipped" may spare a retry.
    unasked = {f.symbol for f in batch.failed if not f.asked}
    return RefreshSummary(
        asset_class=asset_class,
        requested=len(symbols),
        stored=stored,
        stored_bars=stored_bars,
        rejected=rejected,
        failed=dict(sorted(failed.items())),
        skipped=skipped,
        quarantined=quarantined,
        # Which providers really served (the chain fails over per symbol), not the chain's name.
        source=",".join(sorted({q.source for q in quotes})) or source.name,
        # The retry is due when the first provider can serve any failed symbol (each symbol's wait is
        # already its earliest provider's): a paused provider is skipped then, never waited for.
        retry_after=earliest_wait(waits),
        # Every provider that failed during the call, when symbols are left failed (their dead letter names them).
        provider_failures=provider_failures or (batch.failures if failed else ()),
        gone=gone,
        asked_nobody=bool(failed) and failed.keys() <= unasked,
    )


def _fetch(source: AssetSource, assets: list[AssetIds]) -> tuple[QuoteBatch, tuple[ProviderFailure, ...]]:
    """The chain's batch; a chain that served nothing and raised a transient fault fails every symbol
    (and says which providers failed and why)."""
    try:
        return source.fetch_asset_quotes(assets), ()
    except TransientProviderError as exc:
        reason = escape(exc)
        failed = tuple(Failed(a.symbol, reason, exc.retry_after, asked=_asked(exc, a.symbol)) for a in assets)
        return QuoteBatch(failed=failed), tuple(getattr(exc, "failures", ()))


def _asked(exc: TransientProviderError, symbol: str) -> bool:
    """Whether a provider was sent a request for ``symbol`` before ``exc`` (the chain's verdict names
    the symbols it asked nobody for; a single provider skipped outright asked nobody at all)."""
    if isinstance(exc, AllProvidersFailedError):
        return symbol not in exc.unasked
    return not isinstance(exc, ProviderSkippedError)


def transient_fault(summary: RefreshSummary) -> TransientProviderError:
    """The error a batch retries (or finally fails) with: names the symbols that failed and why."""
    reasons = sorted(set(summary.failed.values()))
    return TransientProviderError(
        f"{len(summary.failed)} of {summary.requested} symbols failed transiently: "
        f"{', '.join(summary.failed)} ({'; '.join(reasons[:3])})",
        retry_after=summary.retry_after,
        failures=summary.provider_failures,
    )
