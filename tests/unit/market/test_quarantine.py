"""A symbol every provider keeps calling unknown is quarantined: skipped, visible, and re-admitted by hand."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from backend.market.models import Asset, Quote
from backend.market.quarantine import record_verdicts
from backend.tasks.quotes import plan_quote_batches, refresh_quotes

pytestmark = pytest.mark.django_db


def _verdicts(*assets: Asset, stored=(), unknown=()) -> list[str]:
    by_symbol = {a.symbol: a.pk for a in assets}
    return record_verdicts(by_symbol, stored=stored, unknown={s: "unknown symbol" for s in unknown}, by="quotes.fetch")


def test_a_symbol_is_quarantined_after_n_unknown_verdicts_in_a_row(make_asset, settings) -> None:
    settings.QUARANTINE_AFTER_UNKNOWN = 3
    nope, aapl = make_asset("NOPE"), make_asset("AAPL")
    assert _verdicts(nope, aapl, stored=["AAPL"], unknown=["NOPE"]) == []
    assert _verdicts(nope, aapl, stored=["AAPL"], unknown=["NOPE"]) == []
    assert _verdicts(nope, aapl, stored=["AAPL"], unknown=["NOPE"]) == ["NOPE"]
    nope.refresh_from_db()
    assert nope.is_quarantined and nope.unknown_streak == 3
    assert (nope.quarantined_by, nope.quarantine_reason) == ("quotes.fetch", "unknown symbol")
    assert list(Asset.objects.quarantined()) == [nope]
    # A fourth verdict does not stamp it again.
    stamp = nope.quarantined_at
    assert _verdicts(nope, unknown=["NOPE"]) == []
    nope.refresh_from_db()
    assert nope.quarantined_at == stamp


def test_a_stored_quote_ends_the_streak_and_other_outcomes_leave_it(make_asset, settings) -> None:
    settings.QUARANTINE_AFTER_UNKNOWN = 3
    flaky = make_asset("FLKY")
    _verdicts(flaky, unknown=["FLKY"])
    _verdicts(flaky, stored=["FLKY"])
    flaky.refresh_from_db()
    assert flaky.unknown_streak == 0
    _verdicts(flaky, unknown=["FLKY"])
    _verdicts(flaky)  # failed transiently, or a bad record: no verdict about the symbol itself
    _verdicts(flaky, unknown=["FLKY"])
    flaky.refresh_from_db()
    assert (flaky.unknown_streak, flaky.is_quarantined) == (2, False)
    assert _verdicts(flaky, unknown=["FLKY"]) == ["FLKY"]


def test_a_batch_whose_assets_had_no_streak_writes_nothing_and_one_that_had_is_reset(
    make_asset, django_assert_num_queries
) -> None:
    aapl, flaky = make_asset("AAPL"), make_asset("FLKY", unknown_streak=2)
    ids = {"AAPL": aapl.pk, "FLKY": flaky.pk}
    with django_assert_num_queries(0):
        record_verdicts(ids, stored=["AAPL"], by="quotes.fetch", streaks={"AAPL": 0, "FLKY": 2})
    with django_assert_num_queries(1):
        record_verdicts(ids, stored=["AAPL", "FLKY"], by="quotes.fetch", streaks={"AAPL": 0, "FLKY": 2})
    flaky.refresh_from_db()
    assert flaky.unknown_streak == 0


def test_quarantine_can_be_turned_off(make_asset, settings) -> None:
    settings.QUARANTINE_AFTER_UNKNOWN = 0
    nope = make_asset("NOPE")
    for _ in range(5):
        assert _verdicts(nope, unknown=["NOPE"]) == []
    nope.refresh_from_db()
    assert (nope.unknown_streak, nope.is_quarantined) == (5, False)


def test_the_reason_is_escaped(make_asset, settings) -> None:
    settings.QUARANTINE_AFTER_UNKNOWN = 1
    nope = make_asset("NOPE")
    record_verdicts({"NOPE": nope.pk}, unknown={"NOPE": "bad\r\nline\x00"}, by="quotes.fetch")
    nope.refresh_from_db()
    assert nope.quarantine_reason == "bad\\r\\nline\\x00"


def test_fetches_and_planning_skip_quarantined_assets(make_asset) -> None:
    make_asset("AAPL")
    make_asset("NOPE", quarantined_at=timezone.now(), quarantined_by="quotes.fetch")
    assert plan_quote_batches("stock", 10) == [["AAPL"]]
    summary = refresh_quotes("stock", ["AAPL", "NOPE"])
    assert summary.skipped == ["NOPE"]
    assert list(Quote.objects.values_list("asset__symbol", flat=True)) == ["AAPL"]


def _quarantine(asset: Asset) -> None:
    record_verdicts({asset.symbol: asset.pk}, unknown={asset.symbol: "unknown"}, by="quotes.fetch")
    asset.refresh_from_db()


def test_the_admin_filters_quarantined_assets_and_clears_them(admin_client, make_asset, settings) -> None:
    settings.QUARANTINE_AFTER_UNKNOWN = 1
    nope, _ = make_asset("NOPE"), make_asset("AAPL")
    _quarantine(nope)
    changelist = reverse("admin:market_asset_changelist")

    listed = admin_client.get(changelist, {"quarantined": "yes"})
    assert [a.symbol for a in listed.context["cl"].result_list] == ["NOPE"]
    listed = admin_client.get(changelist, {"quarantined": "no"})
    assert [a.symbol for a in listed.context["cl"].result_list] == ["AAPL"]

    response = admin_client.post(changelist, {"action": "clear_quarantine", "_selected_action": [nope.pk]})
    assert response.status_code == 302
    nope.refresh_from_db()
    assert (nope.is_quarantined, nope.unknown_streak, nope.quarantine_reason) == (False, 0, "")


def test_editing_a_quarantined_asset_re_admits_it(admin_client, make_asset, settings) -> None:
    settings.QUARANTINE_AFTER_UNKNOWN = 1
    nope = make_asset("NOPE")
    _quarantine(nope)
    response = admin_client.post(
        reverse("admin:market_asset_change", args=[nope.pk]),
        {"symbol": "NOPE", "name": "Renamed", "asset_type": nope.asset_type_id, "is_active": "on"},
    )
    assert response.status_code == 302
    nope.refresh_from_db()
    assert (nope.name, nope.is_quarantined) == ("Renamed", False)


def test_an_operator_can_quarantine_by_hand(admin_client, admin_user, make_asset) -> None:
    aapl = make_asset("AAPL")
    admin_client.post(reverse("admin:market_asset_changelist"), {"action": "quarantine", "_selected_action": [aapl.pk]})
    aapl.refresh_from_db()
    assert aapl.is_quarantined and aapl.quarantined_by == f"admin:{admin_user.username}"


def test_metrics_count_quarantined_assets(client, make_asset, settings) -> None:
    settings.QUARANTINE_AFTER_UNKNOWN = 1
    make_asset("AAPL")
    _quarantine(make_asset("NOPE"))
    _quarantine(make_asset("GONE"))
    scrape = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {settings.METRICS_TOKEN}").content.decode()
    families = {f.name: f for f in text_string_to_metric_families(scrape)}
    assert [(s.labels, s.value) for s in families["financehub_quarantined_assets"].samples] == [
        ({"asset_class": "stock"}, 2)
    ]
