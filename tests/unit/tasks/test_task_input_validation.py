"""Direct task calls (and replayed dead letters, which re-send stored arguments) are checked first.

A bad argument is refused before any query with one error naming it, escaped; nothing is fetched or stored.
"""

from __future__ import annotations

import pytest

from backend.market.models import PriceBar, Quote
from backend.market.symbols import InvalidInputError
from backend.tasks.backfill import backfill_asset
from backend.tasks.quotes import refresh_quotes
from backend.tasks.tasks import backfill_history, fetch_quotes

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("asset_class", "symbols", "named"),
    [
        ("stock", ["AAPL", "BAD\x00"], "'BAD\\x00'"),
        ("stock", ["AAPL\r\n2026-01-01 forged"], "'AAPL\\r\\n2026-01-01 forged'"),
        ("stock", "AAPL", "'AAPL'"),  # a bare string, not a list
        ("stock", [["AAPL"]], "['AAPL']"),
        ("st\x00ck", ["AAPL"], "'st\\x00ck'"),
    ],
)
def test_a_quote_fetch_refuses_bad_input_before_any_query(
    make_asset, django_assert_num_queries, asset_class, symbols, named
) -> None:
    make_asset("AAPL")
    with django_assert_num_queries(0), pytest.raises(InvalidInputError) as caught:
        refresh_quotes(asset_class, symbols)
    assert named in str(caught.value)
    assert not Quote.objects.exists()


@pytest.mark.parametrize("symbol", ["AAPL\x00", "AAPL\r\nforged", 42, ""])
def test_a_backfill_refuses_a_bad_symbol_before_any_query(make_asset, django_assert_num_queries, symbol) -> None:
    make_asset("AAPL")
    with django_assert_num_queries(0), pytest.raises(InvalidInputError, match="is not a valid symbol"):
        backfill_asset(symbol)
    assert not PriceBar.objects.exists()


def test_the_tasks_fail_fast_on_bad_input_without_a_retry(make_asset) -> None:
    make_asset("AAPL")
    fetched = fetch_quotes.apply(args=("stock", ["AAPL", "BAD\x00"]))
    backfilled = backfill_history.apply(args=("AAPL\r\nforged",))
    for result in (fetched, backfilled):
        assert result.state == "FAILURE"
        assert isinstance(result.result, InvalidInputError)
    assert not Quote.objects.exists() and not PriceBar.objects.exists()
