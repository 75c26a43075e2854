"""A quote batch's outcome is complete and honest: every symbol stored, rejected, failed or skipped."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from backend.market.models import Asset, Quote
from backend.providers.errors import AllProvidersFailedError, TransientProviderError
from backend.providers.models import Failed, ProviderFailure, QuoteBatch, Rejected
from backend.providers.models import Quote as QuoteRecord
from backend.providers.orchestrator import Instrument
from backend.tasks import quotes
from backend.tasks.models import DispatchRun
from backend.tasks.sources import AssetSource
from backend.tasks.tasks import fetch_quotes

pytestmark = pytest.mark.django_db


class ScriptedChain:
    """A provider chain whose answer per symbol comes from a script: 'ok', 'unknown', 'bad', 'fail'."""

    name = "scripted"

    def __init__(self, script: Callable[[str], str]) -> None:
        self.script = script
        self.calls: list[list[str]] = []

    def fetch_quotes(self, instruments: Sequence[Instrument]) -> QuoteBatch:
        symbols = [i.symbol for i in instruments]
        self.calls.append(symbols)
        verdicts = {s: self.script(s) for s in symbols}
        if verdicts and all(v == "raise" for v in verdicts.values()):
            raise AllProvidersFailedError("every provider timed out", retry_after=7.0)
        now = datetime.now(UTC)
        return QuoteBatch(
            quotes=tuple(QuoteRecord(s, Decimal("10.5"), now, "scripted") for s, v in verdicts.items() if v == "ok"),
            rejected=tuple(
                Rejected(s, "unknown symbol" if v == "unknown" else "NaN price", unknown=v == "unknown")
                for s, v in verdicts.items()
                if v in ("unknown", "bad")
            ),
            failed=tuple(
                Failed(s, "429 Too Many Requests", retry_after=3.0) for s, v in verdicts.items() if v == "fail"
            ),
            failures=(ProviderFailure("yahoo", "ProviderThrottledError", "429"),)
            if "fail" in verdicts.values()
            else (),
        )


@pytest.fixture
def scripted(monkeypatch) -> Callable[[Callable[[str], str]], ScriptedChain]:
    def install(script: Callable[[str], str]) -> ScriptedChain:
        chain = ScriptedChain(script)
        monkeypatch.setattr(quotes, "quote_source", lambda asset_class: AssetSource(asset_class, chain, chain))
        return chain

    return install


VERDICTS = {"AAPL": "ok", "MSFT": "ok", "NOPE": "unknown", "BADR": "bad", "SLOW": "fail"}


def test_every_symbol_ends_in_exactly_one_outcome(make_asset, scripted) -> None:
    for symbol in VERDICTS:
        make_asset(symbol)
    make_asset("BTC", "crypto")
    scripted(VERDICTS.get)

    summary = quotes.refresh_quotes("stock", [*VERDICTS, "BTC", "GONE"])

    assert summary.stored == ["AAPL", "MSFT"]
    assert summary.rejected == {"BADR": "NaN price", "NOPE": "unknown symbol"}
    assert summary.failed == {"SLOW": "429 Too Many Requests"}
    assert summary.skipped == ["BTC", "GONE"]
    assert summary.retry_after == 3.0
    outcomes = [*summary.stored, *summary.rejected, *summary.failed, *summary.skipped]
    assert sorted(outcomes) == sorted([*VERDICTS, "BTC", "GONE"])
    assert set(Quote.objects.values_list("asset__symbol", flat=True)) == {"AAPL", "MSFT"}
    assert summary.as_dict()["stored_quotes"] == 2


def test_symbols_left_failed_by_a_partly_served_call_name_the_providers_that_failed(make_asset, scripted) -> None:
    make_asset("AAPL")
    make_asset("SLOW")
    scripted({"AAPL": "ok", "SLOW": "fail"}.get)
    summary = quotes.refresh_quotes("stock", ["AAPL", "SLOW"])
    assert summary.stored == ["AAPL"] and list(summary.failed) == ["SLOW"]
    fault = quotes.transient_fault(summary)
    assert [(f.provider, f.error) for f in fault.failures] == [("yahoo", "ProviderThrottledError")]
    scripted({"AAPL": "ok"}.get)
    assert quotes.refresh_quotes("stock", ["AAPL"]).provider_failures == ()


def test_a_chain_that_served_nothing_fails_every_symbol_transiently(make_asset, scripted) -> None:
    make_asset("AAPL")
    make_asset("MSFT")
    scripted(lambda s: "raise")

    summary = quotes.refresh_quotes("stock", ["AAPL", "MSFT"])

    assert summary.stored == [] and summary.rejected == {}
    assert list(summary.failed) == ["AAPL", "MSFT"]
    assert summary.retry_after == 7.0


def test_a_symbol_the_chain_forgot_is_failed_not_dropped(make_asset, scripted) -> None:
    make_asset("AAPL")
    make_asset("LOST")
    scripted(lambda s: "ok" if s == "AAPL" else "nothing")

    summary = quotes.refresh_quotes("stock", ["AAPL", "LOST"])

    assert summary.failed == {"LOST": "no outcome from the provider chain"}


def test_unknown_verdicts_quarantine_after_the_threshold_and_later_fetches_skip_it(
    make_asset, scripted, settings
) -> None:
    settings.QUARANTINE_AFTER_UNKNOWN = 2
    make_asset("AAPL")
    make_asset("NOPE")
    chain = scripted(lambda s: "ok" if s == "AAPL" else "unknown")

    assert quotes.refresh_quotes("stock", ["AAPL", "NOPE"]).quarantined == []
    assert quotes.refresh_quotes("stock", ["AAPL", "NOPE"]).quarantined == ["NOPE"]
    third = quotes.refresh_quotes("stock", ["AAPL", "NOPE"])

    assert third.skipped == ["NOPE"]
    assert chain.calls[-1] == ["AAPL"]  # no provider is asked about a quarantined symbol
    assert Asset.objects.get(symbol="NOPE").quarantine_reason == "unknown symbol"
    assert quotes.plan_quote_batches("stock", 10) == [["AAPL"]]


def _run(planned: int) -> DispatchRun:
    return DispatchRun.objects.create(schedule="quotes.dispatch:stock", slot=timezone.now(), planned=planned, batches=1)


def test_the_task_records_its_outcome_and_retries_only_the_failed_subset(make_asset, scripted) -> None:
    for symbol in VERDICTS:
        make_asset(symbol)
    attempts: dict[str, int] = {}

    def slow_then_ok(symbol: str) -> str:
        attempts[symbol] = attempts.get(symbol, 0) + 1
        return "ok" if VERDICTS[symbol] == "fail" and attempts[symbol] > 1 else VERDICTS[symbol]

    chain = scripted(slow_then_ok)
    run = _run(len(VERDICTS))

    result = fetch_quotes.apply(args=("stock", sorted(VERDICTS)), kwargs={"run_id": run.pk, "batch": 0})

    assert result.state == "SUCCESS"
    assert chain.calls == [sorted(VERDICTS), ["SLOW"]]  # the retry asked for the failed subset only
    assert result.result["stored"] == ["SLOW"] and result.result["failed"] == {}
    run.refresh_from_db()
    assert (run.done, run.failed, run.status) == (3, 2, DispatchRun.Status.DONE)
    assert set(Quote.objects.values_list("asset__symbol", flat=True)) == {"AAPL", "MSFT", "SLOW"}


def test_when_retries_run_out_the_subset_fails_and_the_run_counts_it(make_asset, scripted) -> None:
    for symbol in VERDICTS:
        make_asset(symbol)
    chain = scripted(VERDICTS.get)
    run = _run(len(VERDICTS))

    result = fetch_quotes.apply(args=("stock", sorted(VERDICTS)), kwargs={"run_id": run.pk, "batch": 0})

    assert result.state == "FAILURE"
    assert isinstance(result.result, TransientProviderError)
    assert "1 of 1 symbols failed transiently: SLOW" in str(result.result)
    assert chain.calls[1:] == [["SLOW"]] * fetch_quotes.max_retries
    run.refresh_from_db()
    assert (run.done, run.failed, run.status) == (2, 3, DispatchRun.Status.DONE)
