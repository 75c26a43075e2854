"""The demo universe: assets, asset types and reference prices read from a JSON data file
(``fixtures/demo_assets.json`` for ``make run``; any file for ``load_demo_assets --file``).

Every row is checked before any query touches its values, and a refused row never stops the rows
after it. Writing prices and news is ``store``'s job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ValidationError

from .models import PRICE_CEILING, Asset, AssetType
from .symbols import InvalidInputError, check_asset_class, check_symbol, has_control_characters, shown


@dataclass(frozen=True)
class LoadResult:
    """What a load did with each row: created, updated, kept as it was, or refused (with reasons)."""

    created: int
    updated: int
    errors: tuple[str, ...]
    kept: int = 0


def load_assets(path: Path, *, update: bool = False) -> LoadResult:
    """Create the assets (and asset types) of a JSON data file that are not in the database yet.

    A row whose symbol exists is kept as the operator left it (paused, renamed, quarantined) unless
    ``update`` is set: then the file's values overwrite it, and a row that already matches the file is
    not saved again. Every row is checked before any query touches its values (a NUL byte would crash
    PostgreSQL), and a refused row never stops the rows after it.
    """
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise InvalidInputError(f"{path.name}: expected an object with 'asset_types' and 'assets'")
    errors: list[str] = []
    types = {}
    for row in data.get("asset_types", []):
        try:
            code, name = _asset_type_row(row)
        except InvalidInputError as exc:
            errors.append(f"asset type {exc}")
            continue
        store = AssetType.objects.update_or_create if update else AssetType.objects.get_or_create
        types[code], _ = store(code=code, defaults={"name": name})
    created = updated = kept = 0
    for row in data.get("assets", []):
        try:
            symbol, type_code, fields = _asset_row(row)
        except InvalidInputError as exc:
            errors.append(str(exc))
            continue
        asset_type = types.get(type_code) or AssetType.objects.filter(code=type_code).first()
        if asset_type is None:
            errors.append(f"{shown(symbol)}: unknown asset type {shown(type_code)}")
            continue
        existing = Asset.objects.filter(symbol=symbol).first()
        if existing is not None and not update:
            kept += 1
            continue
        asset = existing or Asset(symbol=symbol)
        before = _loaded_values(asset)
        asset.asset_type = asset_type
        for name, value in fields.items():
            setattr(asset, name, value)
        if existing is not None and _loaded_values(asset) == before:
            kept += 1
            continue
        try:
            asset.full_clean()
        except ValidationError as exc:
            errors.append(f"{shown(symbol)}: {'; '.join(exc.messages)}")
            continue
        asset.save()
        created += existing is None
        updated += existing is not None
    return LoadResult(created=created, updated=updated, errors=tuple(errors), kept=kept)


_TEXT_FIELDS = ("name", "exchange", "coingecko_id", "binance_symbol")


def _loaded_values(asset: Asset) -> dict[str, object]:
    """The fields of ``asset`` a data file sets, to tell whether an update changes anything."""
    return {"asset_type_id": asset.asset_type_id, "is_active": asset.is_active} | {
        name: getattr(asset, name) for name in _TEXT_FIELDS
    }


def _asset_type_row(row: object) -> tuple[str, str]:
    """(code, name) of an asset type row, or InvalidInputError naming what is wrong."""
    if not isinstance(row, dict):
        raise InvalidInputError(f"row {shown(row)} is not an object")
    code = check_asset_class(row.get("code"))
    return code, _plain_text(code, "name", row.get("name", code))


def _asset_row(row: object) -> tuple[str, str, dict[str, object]]:
    """(symbol, type code, other fields) of an asset row, checked before any query sees them."""
    if not isinstance(row, dict):
        raise InvalidInputError(f"row {shown(row)} is not an object")
    symbol = check_symbol(row.get("symbol"))
    try:
        type_code = check_asset_class(row.get("type"))
    except InvalidInputError as exc:
        raise InvalidInputError(f"{shown(symbol)}: type {exc}") from None
    fields: dict[str, object] = {name: _plain_text(symbol, name, row.get(name, "")) for name in _TEXT_FIELDS}
    is_active = row.get("is_active", True)
    if not isinstance(is_active, bool):
        raise InvalidInputError(f"{shown(symbol)}: is_active must be true or false, not {shown(is_active)}")
    fields["is_active"] = is_active
    return symbol, type_code, fields


def _plain_text(symbol: str, field: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"{shown(symbol)}: {field} must be text, not {shown(value)}")
    if has_control_characters(value):
        raise InvalidInputError(f"{shown(symbol)}: {field} {shown(value)} holds control characters")
    return value


def reference_prices(path: Path) -> dict[str, float]:
    """Each asset's optional ``reference_price`` in an asset data file: the level simulated prices start from.

    A missing file or a missing, non-numeric or non-positive price gives no entry (the simulated
    provider then derives a level from the symbol); the file's assets themselves are load_assets' job.
    """
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    prices: dict[str, float] = {}
    for row in data.get("assets", []):
        price = row.get("reference_price")
        # bool is an int to Python; a price of `true` is a typo, not 1.0.
        if isinstance(price, int | float) and not isinstance(price, bool) and 0 < price < float(PRICE_CEILING):
            prices[str(row.get("symbol", ""))] = float(price)
    return prices
