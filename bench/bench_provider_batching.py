"""Count provider calls for big universes: 1,000 crypto and 500 stock symbols through the real clients.

Each client talks to the in-process fake provider server over loopback HTTP; the server's request
log gives the calls actually made, compared with ceil(N / the endpoint's batch limit). The crypto
chain is also run end to end (Binance first) and with Binance failing, to show what failover costs.
No rate limit is applied: this measures batching, not quotas.

Run from the repo root: .venv/bin/python -m bench.bench_provider_batching [n_crypto] [n_stocks]
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from backend.fake_provider import FakeProviderServer
from backend.providers.alphavantage import AlphaVantageClient
from backend.providers.binance import BinanceClient
from backend.providers.breaker import CircuitBreaker
from backend.providers.coingecko import CoinGeckoClient
from backend.providers.coinmarketcap import CoinMarketCapClient
from backend.providers.http import build_client
from backend.providers.models import QuoteBatch
from backend.providers.orchestrator import Instrument, ProviderChain
from backend.providers.yahoo import YahooClient
from bench.request_log import settled_count

KEY = "bench-key"
CRYPTO_CHAIN = ("binance", "coingecko", "coinmarketcap")


@dataclass
class Row:
    run: str
    symbols: int
    batch_limit: str
    expected: str
    calls: str
    served: int
    seconds: float


def crypto_universe(n: int) -> list[Instrument]:
    """Synthetic coins every fake API knows: pair XnnnnUSDT, CoinGecko id xnnnn-coin, CMC symbol Xnnnn."""
    return [
        Instrument(
            f"X{i:04d}", {"binance": f"X{i:04d}USDT", "coingecko": f"x{i:04d}-coin", "coinmarketcap": f"X{i:04d}"}
        )
        for i in range(n)
    ]


def stock_universe(n: int) -> list[str]:
    return [f"S{i:04d}" for i in range(n)]


def timed(fn: Callable[[], QuoteBatch]) -> tuple[QuoteBatch, float]:
    started = time.perf_counter()
    batch = fn()
    return batch, time.perf_counter() - started


def chain_calls(server: FakeProviderServer) -> str:
    """Requests to each provider of the crypto chain, in chain order."""
    return " / ".join(str(settled_count(server, name)) for name in CRYPTO_CHAIN)


def main() -> None:
    n_crypto = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    n_stocks = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    coins = crypto_universe(n_crypto)
    stocks = stock_universe(n_stocks)
    rows: list[Row] = []

    with FakeProviderServer() as server, build_client() as http:
        clients = {
            "binance": BinanceClient(http, base_url=server.base_url("binance")),
            "coingecko": CoinGeckoClient(http, base_url=server.base_url("coingecko"), api_key=KEY),
            "coinmarketcap": CoinMarketCapClient(http, base_url=server.base_url("coinmarketcap"), api_key=KEY),
            "yahoo": YahooClient(http, base_url=server.base_url("yahoo")),
            "alphavantage": AlphaVantageClient(http, base_url=server.base_url("alphavantage"), api_key=KEY),
        }
        # Warm-up: one connection and Yahoo's cookie + crumb, so timings measure the steady state.
        clients["binance"].fetch_quotes(["BTCUSDT"])
        clients["yahoo"].fetch_quotes(["AAPL"])
        settled_count(server, "yahoo")  # let the warm-up reach the log before it is cleared

        universes = [("crypto", name, [c.ids[name] for c in coins]) for name in CRYPTO_CHAIN]
        universes += [("stock", name, stocks) for name in ("yahoo", "alphavantage")]
        for asset_class, name, ids in universes:
            client = clients[name]
            server.clear_requests()
            batch, seconds = timed(lambda client=client, ids=ids: client.fetch_quotes(ids))
            expected = math.ceil(len(ids) / client.batch_limit)
            calls = settled_count(server, name)
            rows.append(
                Row(
                    f"{asset_class}, {name}",
                    len(ids),
                    str(client.batch_limit),
                    str(expected),
                    str(calls),
                    len(batch.quotes),
                    seconds,
                )
            )

        chain = ProviderChain([clients[name] for name in CRYPTO_CHAIN], breaker=CircuitBreaker())
        server.clear_requests()
        batch, seconds = timed(lambda: chain.fetch_quotes(coins))
        rows.append(
            Row(
                "crypto chain, all up",
                len(coins),
                "20 / 250 / 100",
                f"{math.ceil(n_crypto / 20)} / 0 / 0",
                chain_calls(server),
                len(batch.quotes),
                seconds,
            )
        )

        server.set_fault("binance", "status_500")
        server.clear_requests()
        batch, seconds = timed(lambda: chain.fetch_quotes(coins))
        server.clear_faults()
        rows.append(
            Row(
                "crypto chain, Binance 500",
                len(coins),
                "20 / 250 / 100",
                f"1 / {math.ceil(n_crypto / 250)} / 0",
                chain_calls(server),
                len(batch.quotes),
                seconds,
            )
        )

    print(
        "| run | symbols | batch limit | expected calls = ceil(N / limit) | calls (server log) | quotes | wall time |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row.run} | {row.symbols} | {row.batch_limit} | {row.expected} | {row.calls} | {row.served} "
            f"| {row.seconds * 1000:.0f} ms |"
        )


if __name__ == "__main__":
    main()
