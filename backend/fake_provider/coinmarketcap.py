"""Fake CoinMarketCap: quotes/latest (v1 and v2) and the id map, with status.error_code bodies."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from backend.fake_provider.market import (
    CMC_ID_TO_SYMBOL,
    CMC_SLUG_TO_SYMBOL,
    COINS,
    DAY,
    FIAT_USD,
    hash64,
    iso_ms,
    profile,
    unit_hash,
    usd_value,
)
from backend.fake_provider.wire import CMC_UNKNOWN_ID_FLOOR, ApiRequest, Reply, comma_list, json_reply, truthy

if TYPE_CHECKING:
    from backend.fake_provider.server import FakeProviderServer

_CMC_MESSAGES = {
    500: "An internal server error occurred.",
    503: "The service is temporarily unavailable.",
    1001: "This API Key is invalid.",
    1002: "API key missing.",
    1008: "You've exceeded your API Key's HTTP request rate limit. Rate limits reset every minute.",
    1009: "You've exceeded your API Key's daily rate limit.",
    1010: "You've exceeded your API Key's monthly credit limit.",
    1011: "You've hit an IP rate limit.",
}


def cmc_status(code: int, now: float, message: str | None = None) -> dict[str, Any]:
    """CoinMarketCap's ``status`` block with an error code and its message."""
    return {
        "status": {
            "timestamp": iso_ms(now),
            "error_code": code,
            "error_message": message if message is not None else _CMC_MESSAGES.get(code, "Error"),
            "elapsed": 0,
            "credit_count": 0,
        }
    }


_CMC_SYMBOL_RE = re.compile(r"^[A-Za-z0-9$]{1,20}$")


_CMC_SLUG_RE = re.compile(r"^[a-z0-9\-]{1,64}$")


def _cmc_ok(now: float, credits: int) -> dict[str, Any]:
    return {
        "timestamp": iso_ms(now),
        "error_code": 0,
        "error_message": None,
        "elapsed": 3,
        "credit_count": credits,
        "notice": None,
    }


class CoinMarketCapApi:
    """The fake CoinMarketCap endpoints; reads the server's clock, options and unknown symbols."""

    provider = "coinmarketcap"

    def __init__(self, server: FakeProviderServer) -> None:
        self.server = server

    def handle(self, req: ApiRequest) -> Reply:
        now = self.server.now()
        if req.path in ("/v1/cryptocurrency/quotes/latest", "/v2/cryptocurrency/quotes/latest"):
            return self._cmc_quotes(req, now, v2=req.path.startswith("/v2"))
        if req.path == "/v1/cryptocurrency/map":
            wanted = {s.upper() for s in comma_list(req.get("symbol"))}
            rows = [
                {
                    "id": row[2],
                    "rank": row[4],
                    "name": row[1],
                    "symbol": sym,
                    "slug": row[3],
                    "is_active": 1,
                    "first_historical_data": "2013-04-28T18:47:21.000Z",
                    "last_historical_data": iso_ms(now),
                    "platform": None,
                }
                for sym, row in COINS.items()
                if not wanted or sym in wanted
            ]
            return json_reply(200, {"status": _cmc_ok(now, 1), "data": rows})
        return json_reply(404, cmc_status(404, now, "Not found"))

    def _cmc_quotes(self, req: ApiRequest, now: float, *, v2: bool) -> Reply:
        given = [name for name in ("id", "slug", "symbol") if req.get(name)]
        if len(given) != 1:
            msg = (
                '"value" must contain at least one of [id, symbol, slug]'
                if not given
                else ('"value" contains a conflict between exclusive peers [id, symbol, slug]')
            )
            return json_reply(400, cmc_status(400, now, msg))
        kind = given[0]
        raw = comma_list(req.get(kind))
        converts = [c.upper() for c in comma_list(req.get("convert"))] or ["USD"]
        for cur in converts:
            if cur not in FIAT_USD and cur not in ("BTC", "ETH", "USDT"):
                return json_reply(400, cmc_status(400, now, f'Invalid value for "convert": "{cur}"'))
        found: list[tuple[str, str, int, str]] = []  # (data key, asset, cmc id, slug)
        invalid: list[str] = []
        for ident in raw:
            resolved = self._cmc_resolve(kind, ident)
            if resolved is None:
                invalid.append(ident)
            else:
                found.append(resolved)
        if invalid and not (truthy(req.get("skip_invalid")) and self.server.coinmarketcap_skip_invalid):
            return json_reply(400, cmc_status(400, now, f'Invalid value for "{kind}": "{",".join(invalid)}"'))
        data: dict[str, Any] = {}
        for key, asset, cmc_id, slug in found:
            row = self._cmc_row(asset, cmc_id, slug, converts, now, req.nan)
            data[key] = [row] if v2 and kind == "symbol" else row
        credits = max(1, math.ceil(len(found) / 100)) + len(converts) - 1
        return json_reply(200, {"status": _cmc_ok(now, credits), "data": data})

    def _cmc_resolve(self, kind: str, ident: str) -> tuple[str, str, int, str] | None:
        if kind == "symbol":
            if not _CMC_SYMBOL_RE.match(ident):
                return None
            asset = ident.upper()
            if self.server.is_unknown(asset):
                return None
            cmc_id = COINS[asset][2] if asset in COINS else 10_000 + hash64(asset) % 80_000_000
            slug = COINS[asset][3] if asset in COINS else asset.lower()
            return asset, asset, cmc_id, slug
        if kind == "id":
            if not ident.isdigit() or int(ident) >= CMC_UNKNOWN_ID_FLOOR or self.server.is_unknown(ident):
                return None
            cmc_id = int(ident)
            asset = CMC_ID_TO_SYMBOL.get(cmc_id, f"CMC{cmc_id}")
            slug = COINS[asset][3] if asset in COINS else asset.lower()
            return str(cmc_id), asset, cmc_id, slug
        slug = ident.lower()
        if not _CMC_SLUG_RE.match(slug):
            return None
        asset = CMC_SLUG_TO_SYMBOL.get(slug, slug.upper().replace("-", ""))
        if self.server.is_unknown(slug, asset):
            return None
        cmc_id = COINS[asset][2] if asset in COINS else 10_000 + hash64(asset) % 80_000_000
        # docs/providers.md: v1 keys `data` by the requested identifier.
        return slug, asset, cmc_id, slug

    @staticmethod
    def _cmc_row(asset: str, cmc_id: int, slug: str, converts: list[str], now: float, nan: bool) -> dict[str, Any]:
        p = profile(asset)
        updated = iso_ms(now // 60 * 60)
        quote = {}
        for cur in converts:
            rate = 1.0 / usd_value(cur)
            price = p.price * rate
            quote[cur] = {
                "price": math.nan if nan else price,
                "volume_24h": p.volume * price,
                "volume_change_24h": round((unit_hash(p.seed, 31) - 0.5) * 40, 4),
                "percent_change_1h": round((p.price / p.price_at(now - 3600) - 1) * 100, 8),
                "percent_change_24h": round(p.change_pct, 8),
                "percent_change_7d": round((p.price / p.price_at(now - 7 * DAY) - 1) * 100, 8),
                "percent_change_30d": round((p.price / p.price_at(now - 30 * DAY) - 1) * 100, 8),
                "market_cap": price * p.supply,
                "market_cap_dominance": round(min(60.0, price * p.supply / 3.4e10 / rate), 4),
                "fully_diluted_market_cap": price * p.supply * 1.05,
                "tvl": None,
                "last_updated": updated,
            }
        return {
            "id": cmc_id,
            "name": COINS[asset][1] if asset in COINS else asset.title(),
            "symbol": asset,
            "slug": slug,
            "num_market_pairs": 50 + p.seed % 10_000,
            "date_added": "2013-04-28T00:00:00.000Z",
            "tags": [],
            "max_supply": None,
            "circulating_supply": round(p.supply),
            "total_supply": round(p.supply * 1.05),
            "is_active": 1,
            "infinite_supply": False,
            "platform": None,
            "cmc_rank": COINS[asset][4] if asset in COINS else 100 + p.seed % 9000,
            "is_fiat": 0,
            "self_reported_circulating_supply": None,
            "self_reported_market_cap": None,
            "tvl_ratio": None,
            "last_updated": updated,
            "quote": quote,
        }
