"""A retry is due when the FIRST provider of its chain can take it, never the slowest (issue 20, item 8).

Seen: Alpha Vantage's daily quota spent (paused for every worker until midnight) and one HTTP 500 from
Yahoo deferred a 10-stock batch for ten minutes, hopping every few seconds, because the retry took the
longest pause in the chain. Yahoo could take the batch again after the ordinary backoff.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.conf import settings

from backend.market.models import Quote
from backend.providers.errors import TransientProviderError
from backend.providers.models import Quote as QuoteRecord
from backend.providers.models import QuoteBatch
from backend.providers.orchestrator import ProviderChain
from backend.providers.pauses import PauseBoard
from backend.tasks import quotes
from backend.tasks.policy import retry_delay
from backend.tasks.sources import AssetSource

pytestmark = pytest.mark.django_db

STOCKS = ["AAPL", "AMZN", "GOOGL", "JPM", "META", "MSFT", "NVDA", "TSLA", "V", "WMT"]
SIX_HOURS = 6 * 3600


class Provider:
    """A stock quote provider that fails its first ``failures`` calls (``retry_after`` named or not), then serves."""

    def __init__(self, name: str, *, failures: int = 0, retry_after: float | None = None) -> None:
        self.name = name
        self.failures = failures
        self.retry_after = retry_after
        self.calls: list[list[str]] = []

    def fetch_quotes(self, symbols: Sequence[str]) -> QuoteBatch:
        self.calls.append(list(symbols))
        if len(self.calls) <= self.failures:
            raise TransientProviderError(f"{self.name}: HTTP 500", provider=self.name, retry_after=self.retry_after)
        now = datetime.now(UTC)
        return QuoteBatch(quotes=tuple(QuoteRecord(s, Decimal("101.5"), now, self.name) for s in symbols))


@pytest.fixture
def stocks(make_asset) -> list[str]:
    for symbol in STOCKS:
        make_asset(symbol, "stock")
    return STOCKS


def install_chain(monkeypatch, *providers: Provider) -> PauseBoard:
    board = PauseBoard()
    chain = ProviderChain(providers, pauses=board)
    monkeypatch.setattr(quotes, "quote_source", lambda asset_class: AssetSource(asset_class, chain, chain))
    return board


def delay_of(summary: quotes.RefreshSummary, backoff: float) -> float:
    """The countdown ReliableTask.retry gives the batch's retry for a drawn ``backoff``."""
    fault = quotes.transient_fault(summary)
    return retry_delay(
        backoff,
        retry_after=fault.retry_after,
        floor=settings.TASK_RETRY_DELAY_FLOOR,
        cap=settings.TASK_RETRY_BACKOFF_MAX,
        retry_after_max=settings.TASK_RETRY_AFTER_MAX,
    )


def test_a_provider_paused_for_hours_does_not_defer_the_retry_of_one_that_failed_once(monkeypatch, stocks) -> None:
    yahoo = Provider("yahoo", failures=1)
    alphavantage = Provider("alphavantage")
    board = install_chain(monkeypatch, yahoo, alphavantage)
    board.pause("alphavantage", SIX_HOURS, reason="daily quota spent")

    first = quotes.refresh_quotes("stock", stocks)

    assert sorted(first.failed) == stocks and first.stored == []
    assert first.retry_after is None  # Yahoo named no wait: it may be asked again after the backoff
    assert delay_of(first, backoff=4.0) == 4.0
    assert delay_of(first, backoff=0.1) == settings.TASK_RETRY_DELAY_FLOOR
    # The retry is served by Yahoo; the paused provider is skipped without a request.
    second = quotes.refresh_quotes("stock", sorted(first.failed))
    assert second.stored == stocks and second.failed == {}
    assert Quote.objects.filter(source="yahoo").count() == len(stocks)
    assert alphavantage.calls == []


def test_with_every_provider_paused_the_retry_is_due_at_the_shortest_pause(monkeypatch, stocks) -> None:
    yahoo, alphavantage = Provider("yahoo"), Provider("alphavantage")
    board = install_chain(monkeypatch, yahoo, alphavantage)
    board.pause("yahoo", 40, reason="429 with Retry-After")
    board.pause("alphavantage", SIX_HOURS, reason="daily quota spent")

    summary = quotes.refresh_quotes("stock", stocks)

    assert sorted(summary.failed) == stocks
    assert summary.retry_after is not None and 39 < summary.retry_after <= 40
    assert 39 < delay_of(summary, backoff=4.0) <= 40
    assert yahoo.calls == [] and alphavantage.calls == []


def test_a_provider_that_names_a_short_wait_is_not_held_back_by_a_longer_one(monkeypatch, stocks) -> None:
    install_chain(monkeypatch, Provider("yahoo", failures=1, retry_after=12), Provider("alphavantage", failures=1))
    summary = quotes.refresh_quotes("stock", stocks)
    # Alpha Vantage failed without a wait: after the backoff it can serve, earlier than Yahoo's 12 s.
    assert summary.retry_after is None


def test_a_partly_served_batch_retries_its_failed_symbols_when_the_first_provider_can(monkeypatch, stocks) -> None:
    class HalfDown(Provider):
        def fetch_quotes(self, symbols: Sequence[str]) -> QuoteBatch:
            from backend.providers.models import Failed

            served = super().fetch_quotes([s for s in symbols if s < "JPM"])
            return QuoteBatch(
                quotes=served.quotes, failed=tuple(Failed(s, "yahoo: HTTP 500", None) for s in symbols if s >= "JPM")
            )

    board = install_chain(monkeypatch, HalfDown("yahoo"), Provider("alphavantage"))
    board.pause("alphavantage", SIX_HOURS, reason="daily quota spent")

    summary = quotes.refresh_quotes("stock", stocks)

    assert summary.stored == ["AAPL", "AMZN", "GOOGL"]
    assert sorted(summary.failed) == [s for s in stocks if s >= "JPM"]
    assert summary.retry_after is None
