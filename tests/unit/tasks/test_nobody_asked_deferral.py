"""A retry that asked nobody is no attempt: it is deferred to the first provider's moment, retries kept.

Seen in the chaos suite under load: other batches' 429s kept every crypto provider paused, so one batch's
retries sent no request at all (it reached a provider in 1-3 of its 6 attempts) and it ended a dead
letter though no provider had refused it that often. Here: how the chain reports "asked nobody" (a
typed signal, ``ProviderSkippedError``), and the decision a failed attempt takes from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from celery.exceptions import Ignore

from backend.providers.breaker import CircuitBreaker
from backend.providers.errors import ProviderThrottledError
from backend.providers.models import Quote as QuoteRecord
from backend.providers.models import QuoteBatch
from backend.providers.orchestrator import ProviderChain
from backend.providers.pauses import PauseBoard
from backend.tasks import deferral, quotes
from backend.tasks.deferral import DEFERRALS_HEADER, DEFERRED_SECONDS_HEADER, Spent, deferral_wait
from backend.tasks.policy import NOT_BEFORE_HEADER
from backend.tasks.sources import AssetSource
from backend.tasks.telemetry.instruments import TASKS_DEFERRED

COINS = ["ADA", "BTC", "ETH", "SOL"]


class Provider:
    """A crypto quote provider answering 429 + Retry-After to its first ``throttles`` calls, then serving."""

    def __init__(self, name: str, *, throttles: int = 0) -> None:
        self.name = name
        self.throttles = throttles
        self.calls: list[list[str]] = []

    def fetch_quotes(self, symbols: Sequence[str]) -> QuoteBatch:
        self.calls.append(list(symbols))
        if len(self.calls) <= self.throttles:
            raise ProviderThrottledError(f"{self.name}: HTTP 429", provider=self.name, retry_after=3)
        now = datetime.now(UTC)
        return QuoteBatch(quotes=tuple(QuoteRecord(s, Decimal("1.5"), now, self.name) for s in symbols))


@pytest.fixture
def coins(make_asset) -> list[str]:
    for symbol in COINS:
        make_asset(symbol, "crypto")
    return COINS


def install(monkeypatch, *providers: Provider, breaker: CircuitBreaker | None = None) -> PauseBoard:
    board = breaker.pauses if breaker is not None else PauseBoard()
    chain = ProviderChain(providers, breaker=breaker, pauses=board)
    monkeypatch.setattr(quotes, "quote_source", lambda asset_class: AssetSource(asset_class, chain, chain))
    return board


# --- what the chain reports ----------------------------------------------------------------------


@pytest.mark.django_db
def test_an_attempt_that_found_every_provider_paused_asked_nobody(monkeypatch, coins) -> None:
    binance, coingecko = Provider("binance"), Provider("coingecko")
    board = install(monkeypatch, binance, coingecko)
    board.pause("binance", 3, reason="429")
    board.pause("coingecko", 5, reason="429")

    summary = quotes.refresh_quotes("crypto", coins)

    assert sorted(summary.failed) == coins and summary.asked_nobody
    assert summary.retry_after is not None and 2.9 < summary.retry_after <= 3
    assert binance.calls == [] and coingecko.calls == []


@pytest.mark.django_db
def test_an_attempt_a_provider_refused_with_429_asked_someone(monkeypatch, coins) -> None:
    binance, coingecko = Provider("binance", throttles=1), Provider("coingecko")
    board = install(monkeypatch, binance, coingecko)
    board.pause("coingecko", 5, reason="429")

    summary = quotes.refresh_quotes("crypto", coins)

    assert sorted(summary.failed) == coins and not summary.asked_nobody
    assert len(binance.calls) == 1  # a real request, really refused: an attempt
    assert board.remaining("binance") > 2.9  # and it paused the provider for every worker


@pytest.mark.django_db
def test_an_open_circuit_is_skipped_like_a_pause(monkeypatch, coins) -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_seconds=30)
    binance, coingecko = Provider("binance"), Provider("coingecko")
    board = install(monkeypatch, binance, coingecko, breaker=breaker)
    breaker._failure("binance", probing=False)  # one transient failure opens it at threshold 1
    board.pause("coingecko", 4, reason="429")

    summary = quotes.refresh_quotes("crypto", coins)

    assert summary.asked_nobody and binance.calls == [] and coingecko.calls == []
    assert summary.retry_after is not None and 3.9 < summary.retry_after <= 4  # the earlier of the two


@pytest.mark.django_db
def test_only_the_failed_symbols_count_a_served_neighbour_does_not_make_them_asked(monkeypatch, make_asset) -> None:
    # BTC has no Binance id, so only the paused CoinGecko could serve it; ETH is served by Binance.
    make_asset("BTC", "crypto", binance_symbol="")
    make_asset("ETH", "crypto")
    binance, coingecko = Provider("binance"), Provider("coingecko")
    board = install(monkeypatch, binance, coingecko)
    board.pause("coingecko", 3, reason="429")

    summary = quotes.refresh_quotes("crypto", ["BTC", "ETH"])

    assert summary.stored == ["ETH"] and list(summary.failed) == ["BTC"] and summary.asked_nobody
    assert binance.calls == [["ETHUSDT"]]


# --- the decision --------------------------------------------------------------------------------


NOTHING_SPENT = Spent()


def decide(*, asked_nobody: bool = True, retry_after: float | None = 3.0, spent: Spent = NOTHING_SPENT, jitter=0.0):
    """The decision under the default budget (20 deferrals, 300 s)."""
    return deferral_wait(
        asked_nobody=asked_nobody, retry_after=retry_after, spent=spent, max_count=20, max_seconds=300, jitter=jitter
    )


def test_asked_nobody_is_deferred_to_the_first_providers_moment() -> None:
    assert decide() == pytest.approx(3.0 + deferral.MARGIN)
    # The jitter spreads the waiting batches over at most a quarter of the wait (at most a second).
    assert decide(jitter=0.999) == pytest.approx(3.0 + deferral.MARGIN + 0.999 * 0.75)
    assert decide(retry_after=100, jitter=0.999) == pytest.approx(100 + deferral.MARGIN + 0.999)


def test_asked_someone_or_no_named_wait_is_an_ordinary_retry() -> None:
    assert decide(asked_nobody=False) is None
    assert decide(retry_after=None) is None


def test_a_spent_deferral_budget_makes_it_an_ordinary_retry() -> None:
    assert decide(spent=Spent(count=19, seconds=100)) is not None
    assert decide(spent=Spent(count=20, seconds=100)) is None  # by count
    assert decide(spent=Spent(count=3, seconds=297)) is None  # this wait would pass 300 s in all
    assert decide(retry_after=400) is None  # one pause longer than the whole budget: retry, honouring it


class Sent:
    """What a task's ``signature_from_request(...).apply_async()`` would send."""

    def __init__(self) -> None:
        self.options: list[dict[str, Any]] = []

    def __call__(self, **options: Any) -> SimpleNamespace:
        self.options.append(options)
        return SimpleNamespace(apply_async=lambda: None)


def fake_task(headers: dict[str, Any] | None = None, retries: int = 2) -> SimpleNamespace:
    headers = headers or {}
    request = SimpleNamespace(
        id="t-1",
        retries=retries,
        called_directly=False,
        is_eager=False,
        headers=headers,
        delivery_info={"routing_key": "high"},
        **headers,
    )
    return SimpleNamespace(name="quotes.fetch", request=request, signature_from_request=Sent())


def defer(task: SimpleNamespace, *, asked_nobody: bool = True, retry_after: float | None = 3.0) -> None:
    deferral.defer_if_nobody_asked(
        task,  # type: ignore[arg-type]
        asked_nobody=asked_nobody,
        retry_after=retry_after,
        args=("crypto", ["BTC"]),
        kwargs={"run_id": 7, "batch": 2, "reason": ""},
        what="1 crypto symbols",
    )


def test_a_deferral_resends_the_task_under_the_same_retry_number_and_drops_this_delivery(settings, caplog) -> None:
    task = fake_task()
    with pytest.raises(Ignore):
        defer(task)
    [sent] = task.signature_from_request.options
    assert sent["args"] == ("crypto", ["BTC"]) and sent["kwargs"]["run_id"] == 7
    assert "retries" not in sent  # signature_from_request keeps the request's: 2, unchanged
    assert 3.0 < sent["countdown"] <= 3.0 + deferral.MARGIN + 0.75
    assert sent["headers"][DEFERRALS_HEADER] == 1
    assert sent["headers"][DEFERRED_SECONDS_HEADER] == pytest.approx(sent["countdown"], abs=0.001)
    assert NOT_BEFORE_HEADER not in sent["headers"]
    [line] = [r.getMessage() for r in caplog.records if "asked no provider" in r.getMessage()]
    assert "quotes.fetch[t-1] asked no provider for 1 crypto symbols" in line
    assert "retries kept at 2 (deferral 1 of 20" in line


def test_a_deferral_is_counted_in_its_own_metric_and_an_ordinary_retry_is_not(settings) -> None:
    deferred = TASKS_DEFERRED.labels("quotes.fetch", "high")
    before = deferred._value.get()
    with pytest.raises(Ignore):
        defer(fake_task())
    assert deferred._value.get() == before + 1
    defer(fake_task(), asked_nobody=False)  # asked someone: an ordinary retry follows, not counted here
    assert deferred._value.get() == before + 1


def test_a_deferral_adds_to_the_budget_its_message_carries(settings) -> None:
    task = fake_task({DEFERRALS_HEADER: 4, DEFERRED_SECONDS_HEADER: 12.5})
    with pytest.raises(Ignore):
        defer(task)
    headers = task.signature_from_request.options[0]["headers"]
    assert headers[DEFERRALS_HEADER] == 5 and 15.5 < headers[DEFERRED_SECONDS_HEADER] < 16.5


def test_a_deferral_longer_than_the_cap_hops(settings) -> None:
    settings.TASK_RETRY_BACKOFF_MAX = 25
    task = fake_task()
    with pytest.raises(Ignore):
        defer(task, retry_after=100)
    sent = task.signature_from_request.options[0]
    assert sent["countdown"] == 25  # no message held longer than the cap
    assert sent["headers"][NOT_BEFORE_HEADER] > datetime.now(UTC).timestamp() + 99


@pytest.mark.parametrize(
    ("headers", "asked_nobody"),
    [({}, False), ({DEFERRALS_HEADER: 20, DEFERRED_SECONDS_HEADER: 60}, True)],
    ids=["asked someone", "budget spent"],
)
def test_no_deferral_when_someone_was_asked_or_the_budget_is_spent(settings, headers, asked_nobody) -> None:
    task = fake_task(headers)
    defer(task, asked_nobody=asked_nobody)  # returns: the caller retries as usual
    assert task.signature_from_request.options == []


def test_the_budget_is_read_at_use_time(settings) -> None:
    settings.TASK_MAX_DEFERRALS = 0
    task = fake_task()
    defer(task)
    assert task.signature_from_request.options == []
