"""Count the requests it takes to find k unknown symbols among N by bisection, through the real clients.

Binance fails a whole ``ticker/24hr`` request when one pair is unknown (HTTP 400, -1121); so does
CoinMarketCap when it ignores ``skip_invalid`` (400 "Invalid value for symbol"; the fake server is
started with ``coinmarketcap_skip_invalid=False``). The client halves a refused batch until each
unknown symbol stands alone. Requests are counted from the fake server's log and compared with
ceil(N / limit) (a clean run), the bound ceil(N / limit) + 2*k*ceil(log2(limit)), and what asking
one symbol at a time cost before (every symbol of a refused batch asked alone).

Run from the repo root: .venv/bin/python -m bench.bench_isolation
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from backend.fake_provider import FakeProviderServer
from backend.providers.base import ProviderClient
from backend.providers.binance import BinanceClient
from backend.providers.coinmarketcap import CoinMarketCapClient
from backend.providers.http import build_client
from bench.request_log import settled_count

CASES = {"binance": [(20, 0), (20, 1), (20, 2), (20, 5), (100, 1), (100, 4), (1000, 10)],
         "coinmarketcap": [(100, 0), (100, 1), (100, 4), (1000, 10), (1000, 50)]}  # fmt: skip


@dataclass
class Row:
    provider: str
    n: int
    k: int
    clean: int
    bound: int
    one_by_one: int
    requests: int
    quotes: int
    unknown: int
    seconds: float


def identifiers(provider: str, n: int, k: int) -> tuple[list[str], set[str]]:
    """N identifiers of which k (spread evenly) are unknown to the fake server (the ZZZ prefix)."""
    bad_positions = {3 + i * n // k for i in range(k)} if k else set()
    names = [f"ZZZ{i:04d}" if i in bad_positions else f"K{i:04d}" for i in range(n)]
    ids = [f"{name}USDT" for name in names] if provider == "binance" else names
    return ids, {ids[i] for i in bad_positions}


def one_by_one_cost(ids: list[str], bad: set[str], limit: int) -> int:
    """The old isolation: a refused batch costs one more request per symbol in it."""
    chunks = [ids[i : i + limit] for i in range(0, len(ids), limit)]
    return len(chunks) + sum(len(chunk) for chunk in chunks if bad & set(chunk))


def measure(server: FakeProviderServer, client: ProviderClient, n: int, k: int) -> Row:
    ids, bad = identifiers(client.name, n, k)
    server.clear_requests()
    started = time.perf_counter()
    batch = client.fetch_quotes(ids)
    seconds = time.perf_counter() - started
    requests = settled_count(server, client.name)
    assert {r.symbol for r in batch.rejected} == bad and all(r.unknown for r in batch.rejected)
    assert len(batch.quotes) == n - k and not batch.failed
    clean = math.ceil(n / client.batch_limit)
    return Row(
        client.name,
        n,
        k,
        clean,
        clean + 2 * k * math.ceil(math.log2(client.batch_limit)),
        one_by_one_cost(ids, bad, client.batch_limit),
        requests,
        len(batch.quotes),
        len(batch.rejected),
        seconds,
    )


def main() -> None:
    rows: list[Row] = []
    with FakeProviderServer(coinmarketcap_skip_invalid=False) as server, build_client() as http:
        clients = {
            "binance": BinanceClient(http, base_url=server.base_url("binance")),
            "coinmarketcap": CoinMarketCapClient(http, base_url=server.base_url("coinmarketcap"), api_key="bench"),
        }
        clients["binance"].fetch_quotes(["BTCUSDT"])  # warm-up: one connection
        for provider, cases in CASES.items():
            rows.extend(measure(server, clients[provider], n, k) for n, k in cases)
    print("| provider (limit) | N | k unknown | clean = ceil(N/limit) | bound | one by one (before) |"
          " requests (server log) | quotes | rejected unknown | wall time |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        limit = clients[r.provider].batch_limit
        print(
            f"| {r.provider} ({limit}) | {r.n} | {r.k} | {r.clean} | {r.bound} | {r.one_by_one} | {r.requests} "
            f"| {r.quotes} | {r.unknown} | {r.seconds * 1000:.0f} ms |"
        )


if __name__ == "__main__":
    main()
