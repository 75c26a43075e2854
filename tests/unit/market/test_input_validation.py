"""Bad input is refused before any query, with one error naming the value escaped; nothing else changes.

Runs on PostgreSQL in CI, where a NUL byte reaching a query is a DataError rather than a refusal.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from backend.market.demo import load_assets
from backend.market.models import Asset, AssetType, PriceBar
from backend.market.symbols import InvalidInputError, check_symbols

pytestmark = pytest.mark.django_db

HOSTILE = ["AAPL\x00", "AAPL\r\nX", "\x1b[2J", "A\u2028B", 7, None]


def _write(tmp_path: Path, assets: list[object], types: list[object] | None = None) -> Path:
    path = tmp_path / "assets.json"
    path.write_text(json.dumps({"asset_types": types or [{"code": "stock", "name": "Stock"}], "assets": assets}))
    return path


def test_a_bad_row_in_the_asset_file_is_refused_and_the_good_rows_still_load(tmp_path) -> None:
    path = _write(
        tmp_path,
        [
            {"symbol": "AAPL", "name": "Apple", "type": "stock"},
            {"symbol": "BAD\x00", "name": "Nul", "type": "stock"},
            {"symbol": "CRLF\r\nX", "type": "stock"},
            {"symbol": "MSFT", "name": "Micro\x00soft", "type": "stock"},
            {"symbol": "IBM", "type": "stock\x00"},
            "not an object",
            {"symbol": "NVDA", "name": "Nvidia", "type": "stock"},
        ],
    )
    result = load_assets(path)
    assert (result.created, result.updated) == (2, 0)
    assert sorted(Asset.objects.values_list("symbol", flat=True)) == ["AAPL", "NVDA"]
    assert len(result.errors) == 5
    joined = "\n".join(result.errors)
    assert "'BAD\\x00'" in joined and "'CRLF\\r\\nX'" in joined and "'Micro\\x00soft'" in joined
    assert "'stock\\x00'" in joined
    assert "\x00" not in joined and "\r" not in joined


def test_a_bad_asset_type_row_is_refused_without_stopping_the_load(tmp_path) -> None:
    path = _write(
        tmp_path,
        [{"symbol": "AAPL", "type": "stock"}],
        types=[{"code": "st\x00ck", "name": "x"}, {"code": "stock", "name": "Stock"}],
    )
    result = load_assets(path)
    assert result.created == 1
    assert list(AssetType.objects.values_list("code", flat=True)) == ["stock"]
    assert result.errors == ("asset type 'st\\x00ck' is not an asset class (a lower-case code such as 'stock')",)


def test_the_load_command_reports_refused_rows_escaped(tmp_path, capsys) -> None:
    path = _write(tmp_path, [{"symbol": "AAPL", "type": "stock"}, {"symbol": "X\r\nforged", "type": "stock"}])
    with pytest.raises(CommandError, match="1 asset"):
        call_command("load_demo_assets", "--file", str(path))
    out, err = capsys.readouterr()
    assert "1 created" in out
    assert err.count("\n") == 1 and "'X\\r\\nforged'" in err
    assert Asset.objects.filter(symbol="AAPL").exists()


def test_a_file_that_is_not_json_is_one_clear_error(tmp_path) -> None:
    path = tmp_path / "x.json"
    path.write_text("{not json")
    with pytest.raises(CommandError, match="is not an asset file"):
        call_command("load_demo_assets", "--file", str(path))


def test_model_validation_names_the_value_escaped(asset_types) -> None:
    asset = Asset(symbol="AA\x00PL", name="Apple\r\n", asset_type=asset_types["stock"])
    with pytest.raises(ValidationError) as caught:
        asset.full_clean()
    assert caught.value.message_dict["symbol"] == [
        "'AA\\x00PL' is not a valid symbol (1-20 upper-case letters or digits, optionally joined by single '.' or '-')."
    ]
    assert caught.value.message_dict["name"] == ["'Apple\\r\\n' holds control characters."]


@pytest.mark.parametrize("field", ["symbol", "name", "exchange", "binance_symbol"])
def test_the_admin_refuses_a_nul_byte_with_one_error_naming_it(admin_client, asset_types, field: str) -> None:
    data = {"symbol": "AAPL", "name": "Apple", "asset_type": asset_types["stock"].pk, "is_active": "on"}
    data[field] = data.get(field, "X") + "\x00"
    response = admin_client.post(reverse("admin:market_asset_add"), data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field] and len(errors[field]) == 1
    assert "\\x00" in errors[field][0]
    assert Asset.objects.count() == 0


def test_backfill_refuses_bad_symbols_before_any_query(make_asset, django_assert_num_queries) -> None:
    make_asset("AAPL")
    with django_assert_num_queries(0), pytest.raises(CommandError) as caught:
        call_command("backfill", "AAPL", "BAD\x00", "X\r\nforged", "--bars", "30")
    message = str(caught.value)
    assert "'BAD\\x00'" in message and "'X\\r\\nforged'" in message and "\r" not in message
    assert not PriceBar.objects.exists()


def test_backfill_refuses_a_bad_class_before_any_query(django_assert_num_queries) -> None:
    with django_assert_num_queries(0), pytest.raises(CommandError, match=r"'st\\x00ck' is not an asset class"):
        call_command("backfill", "--class", "st\x00ck")


@pytest.mark.parametrize("value", HOSTILE)
def test_a_list_with_any_bad_symbol_is_refused_whole(value: object) -> None:
    with pytest.raises(InvalidInputError) as caught:
        check_symbols(["AAPL", value])
    assert "'AAPL'" not in str(caught.value)  # the good symbol is not named
    assert "\x00" not in str(caught.value) and "\n" not in str(caught.value)
