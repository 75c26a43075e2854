"""Fake CoinGecko: simple/price, coins/markets and market_chart."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from backend.fake_provider.market import (
    CG_TO_SYMBOL,
    COINS,
    DAY,
    FIAT_USD,
    aligned_times,
    iso_ms,
    num_value,
    profile,
    unit_hash,
)
from backend.fake_provider.wire import ApiRequest, BadParam, Reply, comma_list, int_param, json_reply, truthy

if TYPE_CHECKING:
    from backend.fake_provider.server import FakeProviderServer

_CG_IMAGES = "https://coin-images.coingecko.com/coins/images/"


_CG_ID_RE = re.compile(r"^[a-z0-9][a-z0-9\-.]{0,63}$")


class CoinGeckoApi:
    """The fake CoinGecko endpoints; reads the server's clock, options and unknown symbols."""

    provider = "coingecko"

    def __init__(self, server: FakeProviderServer) -> None:
        self.server = server

    def handle(self, req: ApiRequest) -> Reply:
        path = req.path.removeprefix("/api/v3")
        if path == "/ping":
            return json_reply(200, {"gecko_says": "(V3) To the Moon!"})
        if path == "/simple/price":
            return self._cg_simple_price(req)
        if path == "/coins/markets":
            return self._cg_markets(req)
        if path == "/coins/list":
            rows = [{"id": row[0], "symbol": sym.lower(), "name": row[1]} for sym, row in COINS.items()]
            return json_reply(200, rows)
        match = re.fullmatch(r"/coins/([^/]+)/market_chart(/range)?", path)
        if match:
            return self._cg_market_chart(req, unquote(match.group(1)), ranged=bool(match.group(2)))
        return json_reply(404, {"error": "Incorrect path. Please check https://www.coingecko.com/api/documentation"})

    def _cg_asset(self, coin_id: str) -> str | None:
        """The asset behind a CoinGecko id, or None if it is unknown."""
        if not _CG_ID_RE.match(coin_id):
            return None
        asset = CG_TO_SYMBOL.get(coin_id, coin_id.upper())
        return None if self.server.is_unknown(coin_id, asset) else asset

    @staticmethod
    def _cg_rate(vs: str) -> float | None:
        code = vs.upper()
        if code in FIAT_USD:
            return 1.0 / FIAT_USD[code]
        if vs in ("btc", "eth", "usdt"):
            return 1.0 / profile(code).price
        return None

    @staticmethod
    def _cg_round(value: float, nan: bool, precision: str | None) -> float:
        if nan:
            return math.nan
        if precision and precision.isdigit():
            return round(value, int(precision))
        return round(value, 2) if value >= 1 else float(f"{value:.8g}")

    def _cg_simple_price(self, req: ApiRequest) -> Reply:
        vs_list = [v.lower() for v in comma_list(req.get("vs_currencies"))]
        if not vs_list:
            return json_reply(400, {"error": "Missing parameter vs_currencies"})
        ids = [i.lower() for i in comma_list(req.get("ids"))]
        if not ids:
            return json_reply(400, {"error": "Missing parameter ids"})
        with_mcap = truthy(req.get("include_market_cap"))
        with_vol = truthy(req.get("include_24hr_vol"))
        with_change = truthy(req.get("include_24hr_change"))
        with_updated = truthy(req.get("include_last_updated_at"))
        precision = req.get("precision")
        now = int(self.server.now())
        rates = [(vs, rate) for vs in vs_list if (rate := self._cg_rate(vs)) is not None]
        out: dict[str, Any] = {}
        for coin_id in ids:
            asset = self._cg_asset(coin_id)
            if asset is None:
                continue
            p = profile(asset)
            row: dict[str, Any] = {}
            for vs, rate in rates:
                row[vs] = self._cg_round(p.price * rate, req.nan, precision)
                if with_mcap:
                    row[f"{vs}_market_cap"] = round(p.price * rate * p.supply, 2)
                if with_vol:
                    row[f"{vs}_24h_vol"] = round(p.price * rate * p.volume, 2)
                if with_change:
                    row[f"{vs}_24h_change"] = num_value(p.change_pct, req.nan, 4)
            if with_updated:
                row["last_updated_at"] = now - p.seed % 30
            out[coin_id] = row
        return json_reply(200, out)

    def _cg_vs_rate(self, req: ApiRequest) -> float | Reply:
        """Units of the request's ``vs_currency`` per dollar, or CoinGecko's 400 when it is missing or unknown."""
        vs = (req.get("vs_currency") or "").lower()
        if not vs:
            return json_reply(400, {"error": "Missing parameter vs_currency"})
        rate = self._cg_rate(vs)
        return json_reply(400, {"error": "invalid vs_currency"}) if rate is None else rate

    def _cg_markets(self, req: ApiRequest) -> Reply:
        rate = self._cg_vs_rate(req)
        if isinstance(rate, Reply):
            return rate
        try:
            per_page = int_param(req.params, "per_page", 100) or 100
            page = int_param(req.params, "page", 1) or 1
        except BadParam as exc:
            return json_reply(400, {"error": f"invalid {exc}"})
        per_page = max(1, min(per_page, 250))
        ids = [i.lower() for i in comma_list(req.get("ids"))] or [row[0] for row in COINS.values()]
        windows = [
            w
            for w in comma_list(req.get("price_change_percentage"))
            if w in ("1h", "24h", "7d", "14d", "30d", "200d", "1y")
        ]
        now = self.server.now()
        coins = []
        for coin_id in ids:
            asset = self._cg_asset(coin_id)
            if asset is not None:
                coins.append((coin_id, asset, profile(asset)))
        coins.sort(key=lambda c: c[2].price * c[2].supply, reverse=True)
        rows = []
        for coin_id, asset, p in coins[(page - 1) * per_page : page * per_page]:
            price = p.price * rate
            mcap = price * p.supply
            rank = COINS[asset][4] if asset in COINS else 100 + p.seed % 9000
            row: dict[str, Any] = {
                "id": coin_id,
                "symbol": asset.lower() if asset in COINS else coin_id.split("-")[0][:6],
                "name": COINS[asset][1] if asset in COINS else coin_id.replace("-", " ").title(),
                "image": _CG_IMAGES + f"{p.seed % 40000}/large/{coin_id}.png",
                "current_price": self._cg_round(price, req.nan, req.get("precision")),
                "market_cap": round(mcap),
                "market_cap_rank": rank,
                "fully_diluted_valuation": round(mcap * 1.05),
                "total_volume": round(price * p.volume),
                "high_24h": num_value(p.high * rate, req.nan, 8),
                "low_24h": num_value(p.low * rate, req.nan, 8),
                "price_change_24h": num_value(p.change * rate, req.nan, 8),
                "price_change_percentage_24h": num_value(p.change_pct, req.nan, 5),
                "market_cap_change_24h": round(p.change * rate * p.supply, 2),
                "market_cap_change_percentage_24h": round(p.change_pct, 5),
                "circulating_supply": round(p.supply, 1),
                "total_supply": round(p.supply * 1.05, 1),
                "max_supply": None,
                "ath": num_value(price * 1.4, req.nan, 8),
                "ath_change_percentage": round(-100 / 3.5, 5),
                "ath_date": "2024-12-17T15:02:41.429Z",
                "atl": num_value(price * 0.01, req.nan, 8),
                "atl_change_percentage": 9900.0,
                "atl_date": "2013-07-06T00:00:00.000Z",
                "roi": None,
                "last_updated": iso_ms(now - p.seed % 30),
            }
            for window in windows:
                days = {"1h": 1 / 24, "24h": 1, "7d": 7, "14d": 14, "30d": 30, "200d": 200, "1y": 365}[window]
                then = p.price_at(now - days * DAY)
                row[f"price_change_percentage_{window}_in_currency"] = num_value((p.price / then - 1) * 100, req.nan, 5)
            if truthy(req.get("sparkline")):
                start = int(now // 3600 * 3600) - 167 * 3600
                row["sparkline_in_7d"] = {
                    "price": [num_value(p.price_at(start + h * 3600) * rate, req.nan, 8) for h in range(168)]
                }
            rows.append(row)
        return json_reply(200, rows)

    def _cg_market_chart(self, req: ApiRequest, coin_id: str, *, ranged: bool) -> Reply:
        rate = self._cg_vs_rate(req)
        if isinstance(rate, Reply):
            return rate
        asset = self._cg_asset(coin_id.lower())
        if asset is None:
            return json_reply(404, {"error": "coin not found"})
        now = self.server.now()
        p = profile(asset)
        genesis = 1367107200.0  # 2013-04-28, CoinGecko's first data point
        if ranged:
            try:
                start = float(req.get("from") or "")
                end = min(float(req.get("to") or ""), now)
            except ValueError:
                return json_reply(400, {"error": "Invalid from/to: epoch seconds required"})
            span = end - start
        else:
            days = (req.get("days") or "").lower()
            if days == "max":
                start, end = genesis, now
            else:
                try:
                    n = float(days)
                except ValueError:
                    return json_reply(400, {"error": "invalid days"})
                start, end = now - n * DAY, now
            span = end - start
        if req.get("interval") == "daily" or span > 90 * DAY:
            step = DAY
        elif span > DAY:
            step = 3600
        else:
            step = 300
        times = [float(t) for t in aligned_times(step, max(start, genesis), end)]
        if not ranged and end > (times[-1] if times else 0):
            times.append(end)  # the last point is "now", not a bucket boundary
        prices, caps, vols = [], [], []
        for t in times:
            ms = int(t * 1000)
            price = p.price_at(t) * rate
            prices.append([ms, self._cg_round(price, req.nan, req.get("precision"))])
            caps.append([ms, round(price * p.supply, 1)])
            vols.append([ms, round(price * p.volume * (0.5 + unit_hash(p.seed ^ 0x99, int(t))), 1)])
        return json_reply(200, {"prices": prices, "market_caps": caps, "total_volumes": vols})
