"""`manage.py backfill` fills history for the chosen assets and reports what it could not."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from backend.market.models import PriceBar

pytestmark = pytest.mark.django_db


def test_it_backfills_the_named_assets_with_a_progress_bar(make_asset, capsys) -> None:
    make_asset("AAPL")
    make_asset("MSFT")
    call_command("backfill", "AAPL", "--bars", "40")
    out, err = capsys.readouterr()
    assert "backfilled 40 bars for 1 of 1 assets" in out
    assert "backfill" in err and "1/1" in err  # tqdm's bar goes to stderr
    assert PriceBar.objects.filter(asset__symbol="AAPL").count() == 40
    assert not PriceBar.objects.filter(asset__symbol="MSFT").exists()


def test_it_backfills_every_active_asset_of_a_class_by_default(make_asset, capsys) -> None:
    make_asset("AAPL")
    make_asset("BTC", "crypto")
    make_asset("IBM", is_active=False)
    call_command("backfill", "--class", "stock", "--bars", "35")
    assert set(PriceBar.objects.values_list("asset__symbol", flat=True)) == {"AAPL"}


def test_it_refuses_symbols_that_are_not_active_assets(make_asset) -> None:
    make_asset("IBM", is_active=False)
    with pytest.raises(CommandError, match=r"not active \(or quarantined\) assets: IBM, NOPE"):
        call_command("backfill", "IBM", "NOPE")
