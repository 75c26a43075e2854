"""Market data is read-only in admin: view, search and filter; never add, change or delete."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from backend.market.models import IndicatorSnapshot, NewsArticle, PriceBar, Quote

pytestmark = pytest.mark.django_db


@pytest.fixture
def market_rows(make_asset) -> dict[str, object]:
    """One row of each market data table, for AAPL."""
    now = timezone.now()
    aapl = make_asset("AAPL")
    article = NewsArticle.objects.create(
        url="https://news.example.com/aapl/1", title="AAPL in focus", published_at=now, source="simulated"
    )
    article.assets.add(aapl)
    one = Decimal("190.5")
    return {
        "quote": Quote.objects.create(asset=aapl, price=one, as_of=now, source="simulated", fetched_at=now),
        "pricebar": PriceBar.objects.create(
            asset=aapl, interval="1d", timestamp=now - timedelta(days=1), open=one, high=one, low=one, close=one,
            volume=Decimal(10), source="simulated",
        ),
        "indicatorsnapshot": IndicatorSnapshot.objects.create(
            asset=aapl, interval="1d", as_of=now, bars_used=30, sma=190.0, rsi=55.0, computed_at=now
        ),
        "newsarticle": article,
    }  # fmt: skip


MODELS = ("quote", "pricebar", "indicatorsnapshot", "newsarticle")
FILTERS = {
    "quote": {"source": "simulated"},
    "pricebar": {"interval": "1d"},
    "indicatorsnapshot": {"interval": "1d"},
    "newsarticle": {"source": "simulated"},
}


@pytest.mark.parametrize("model", MODELS)
def test_the_list_can_be_searched_and_filtered(admin_client, market_rows, model: str) -> None:
    url = reverse(f"admin:market_{model}_changelist")
    found = admin_client.get(url, {"q": "AAPL", **FILTERS[model]})
    assert found.status_code == 200
    assert found.context["cl"].result_count == 1
    assert admin_client.get(url, {"q": "MSFT"}).context["cl"].result_count == 0
    # No bulk delete among the actions, and no "Add" link.
    assert "delete_selected" not in found.content.decode()
    assert reverse(f"admin:market_{model}_add") not in found.content.decode()


@pytest.mark.parametrize("model", MODELS)
def test_a_row_can_be_viewed_but_not_saved(admin_client, market_rows, model: str) -> None:
    row = market_rows[model]
    url = reverse(f"admin:market_{model}_change", args=[row.pk])
    view = admin_client.get(url)
    assert view.status_code == 200
    assert 'name="_save"' not in view.content.decode()
    assert admin_client.post(url, {}).status_code == 403
    assert type(row).objects.filter(pk=row.pk).exists()


@pytest.mark.parametrize("model", MODELS)
def test_rows_cannot_be_added_or_deleted(admin_client, market_rows, model: str) -> None:
    row = market_rows[model]
    assert admin_client.get(reverse(f"admin:market_{model}_add")).status_code == 403
    assert admin_client.post(reverse(f"admin:market_{model}_add"), {}).status_code == 403
    delete = reverse(f"admin:market_{model}_delete", args=[row.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    bulk = admin_client.post(
        reverse(f"admin:market_{model}_changelist"), {"action": "delete_selected", "_selected_action": [row.pk]}
    )
    assert bulk.status_code in {200, 302}  # an unknown action is refused with a message, not run
    assert type(row).objects.filter(pk=row.pk).exists()


def test_quote_price_stays_what_the_provider_said(admin_client, market_rows) -> None:
    quote = market_rows["quote"]
    url = reverse("admin:market_quote_change", args=[quote.pk])
    admin_client.post(url, {"price": "1", "as_of_0": "2020-01-01", "as_of_1": "00:00:00", "source": "hand"})
    quote.refresh_from_db()
    assert quote.price == Decimal("190.5") and quote.source == "simulated"
