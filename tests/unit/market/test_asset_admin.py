"""A bad symbol is refused in admin with a message, and nothing is stored."""

from __future__ import annotations

import pytest
from django.urls import reverse

from backend.market.models import Asset

BAD_SYMBOLS = [
    "AAPL/../x",
    "",
    "AA PL",
    " AAPL",
    "AAPL\n",
    "AA\x00PL",
    "AAPL\r\nX",
    "aapl",
    "A..B",
    "ÄPPL",
    "X" * 21,
]


@pytest.mark.parametrize("symbol", BAD_SYMBOLS)
def test_admin_refuses_a_bad_symbol_and_stores_nothing(admin_client, asset_types, symbol: str) -> None:
    response = admin_client.post(
        reverse("admin:market_asset_add"),
        {"symbol": symbol, "name": "Bad", "asset_type": asset_types["stock"].pk, "is_active": "on"},
    )
    assert response.status_code == 200  # the form comes back with errors instead of a redirect
    errors = response.context["adminform"].form.errors
    assert "symbol" in errors
    assert Asset.objects.count() == 0


def test_admin_accepts_a_good_symbol(admin_client, asset_types) -> None:
    response = admin_client.post(
        reverse("admin:market_asset_add"),
        {"symbol": "BRK.B", "name": "Berkshire", "asset_type": asset_types["stock"].pk, "is_active": "on"},
    )
    assert response.status_code == 302
    assert list(Asset.objects.values_list("symbol", flat=True)) == ["BRK.B"]


def test_the_refusal_names_the_rule(admin_client, asset_types) -> None:
    response = admin_client.post(
        reverse("admin:market_asset_add"), {"symbol": "AAPL/../x", "asset_type": asset_types["stock"].pk}
    )
    assert "upper-case letters or digits" in response.content.decode()
