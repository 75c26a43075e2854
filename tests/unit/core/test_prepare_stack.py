"""`make run`'s preparation step adds what is missing and never undoes an operator's edits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse

from backend.market.models import Asset, AssetType

pytestmark = pytest.mark.django_db


@pytest.fixture
def prepare(tmp_path: Path, capsys):
    """Run ``prepare_stack`` with its credentials and static files in a private var/; returns its output."""

    def run() -> str:
        with override_settings(VAR_DIR=tmp_path / "var", STATIC_ROOT=tmp_path / "static"):
            call_command("prepare_stack")
        return capsys.readouterr().out

    return run


def demo_symbols() -> set[str]:
    return {row["symbol"] for row in json.loads(Path(settings.DEMO_ASSETS_FILE).read_text())["assets"]}


def test_the_first_start_loads_the_demo_universe(prepare) -> None:
    output = prepare()
    assert set(Asset.objects.values_list("symbol", flat=True)) == demo_symbols()
    assert f"assets: {len(demo_symbols())} created, 0 updated" in output


def edit_in_admin(client: Client, asset: Asset, **changes: object) -> None:
    """Save ``asset``'s change form in admin with ``changes``, as an operator does."""
    data = {
        "symbol": asset.symbol, "name": asset.name, "asset_type": asset.asset_type_id, "exchange": asset.exchange,
        "coingecko_id": asset.coingecko_id, "binance_symbol": asset.binance_symbol, "is_active": "on",
    }  # fmt: skip
    data.update(changes)
    data = {key: value for key, value in data.items() if value is not None}
    response = client.post(reverse("admin:market_asset_change", args=[asset.pk]), data)
    assert response.status_code == 302, response.context["adminform"].form.errors


def test_a_restart_keeps_paused_renamed_quarantined_and_deleted_assets_as_the_operator_left_them(
    prepare, client: Client
) -> None:
    prepare()
    client.force_login(get_user_model().objects.get(username="admin"))  # the admin prepare_stack made
    edit_in_admin(client, Asset.objects.get(symbol="DOGE"), is_active=None)  # unticked: paused
    edit_in_admin(client, Asset.objects.get(symbol="AAPL"), name="Apple (watch list)")
    msft = Asset.objects.get(symbol="MSFT")
    client.post(reverse("admin:market_asset_changelist"), {"action": "quarantine", "_selected_action": [msft.pk]})
    tsla = Asset.objects.get(symbol="TSLA")
    client.post(reverse("admin:market_asset_delete", args=[tsla.pk]), {"post": "yes"})
    assert Asset.objects.get(symbol="MSFT").is_quarantined and not Asset.objects.filter(symbol="TSLA").exists()

    output = prepare()  # the next `make run`

    assert not Asset.objects.get(symbol="DOGE").is_active
    assert Asset.objects.get(symbol="AAPL").name == "Apple (watch list)"
    assert Asset.objects.get(symbol="MSFT").is_quarantined
    assert not Asset.objects.filter(symbol="TSLA").exists()
    assert Asset.objects.count() == len(demo_symbols()) - 1
    assert f"assets: {len(demo_symbols()) - 1} in the database, kept as they are" in output


def test_an_operators_own_universe_is_not_mixed_with_the_demo(prepare, make_asset) -> None:
    make_asset("ONLYMINE")
    prepare()
    assert list(Asset.objects.values_list("symbol", flat=True)) == ["ONLYMINE"]


def test_loading_a_file_adds_missing_assets_and_keeps_existing_ones_unless_asked_to_update(tmp_path, capsys) -> None:
    path = tmp_path / "universe.json"
    rows = [
        {"symbol": "AAPL", "name": "Apple Inc.", "type": "stock", "exchange": "XNAS"},
        {"symbol": "IBM", "name": "IBM", "type": "stock"},
    ]
    path.write_text(json.dumps({"asset_types": [{"code": "stock", "name": "Stock"}], "assets": rows}))
    call_command("load_demo_assets", "--file", str(path))
    Asset.objects.filter(symbol="AAPL").update(name="Apple (mine)", is_active=False)
    AssetType.objects.filter(code="stock").update(name="Equities")
    rows.append({"symbol": "NVDA", "name": "Nvidia", "type": "stock"})
    path.write_text(json.dumps({"asset_types": [{"code": "stock", "name": "Stock"}], "assets": rows}))
    capsys.readouterr()

    call_command("load_demo_assets", "--file", str(path))
    assert "assets: 1 created, 0 updated, 2 kept (already in the database; --update" in capsys.readouterr().out
    aapl = Asset.objects.get(symbol="AAPL")
    assert (aapl.name, aapl.is_active) == ("Apple (mine)", False)
    assert AssetType.objects.get(code="stock").name == "Equities"

    call_command("load_demo_assets", "--file", str(path), "--update")
    assert "assets: 0 created, 1 updated, 2 kept, 0 refused" in capsys.readouterr().out
    aapl.refresh_from_db()
    assert (aapl.name, aapl.is_active) == ("Apple Inc.", True)
    assert AssetType.objects.get(code="stock").name == "Stock"
