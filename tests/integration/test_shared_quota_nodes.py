"""Several workers, one quota: three worker nodes share each provider's rate limit, breaker and pause.

Three ``celery worker`` processes with distinct node names run the real clients against a fake
provider server of this module's own (so no other worker's requests reach its log). Their provider
state lives in Redis under one prefix, on either broker. The server's request log is the witness:
the limit is never exceeded across nodes, a breaker opened by one node keeps every node away from the
provider, and a Retry-After answered to one node is honoured by all.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest
import redis
from django_celery_results.models import TaskResult

from backend.core.celery import app
from backend.fake_provider import FakeProviderServer
from backend.market.models import Asset, Quote
from backend.providers.ratelimit import window_max
from backend.tasks.tasks import fetch_quotes
from tests.fixtures.services import require_service
from tests.fixtures.worker import WorkerProcess, report, require_real_services, start_worker, stop_worker

pytestmark = [pytest.mark.integration, pytest.mark.both_brokers]

NODES = 3
LIMIT = 10  # Binance requests per second, for all nodes together
# A logged request time is its admission plus loopback latency; see test_provider_failover.JITTER.
JITTER = 0.1
SYMBOLS = [f"Q{i:02d}" for i in range(60)]


class Nodes:
    """The three workers, a queue each and one they share, and the fake server they call."""

    def __init__(self, workers: list[WorkerProcess], server: FakeProviderServer, prefix: str) -> None:
        self.workers = workers
        self.server = server
        self.prefix = prefix
        self.shared = f"nodes-{uuid.uuid4().hex[:8]}"
        self.own = {w.hostname: f"node-{uuid.uuid4().hex[:8]}" for w in workers}

    def listen(self) -> None:
        """Each node consumes its own queue and the shared one (besides the test queues)."""
        names = [w.hostname for w in self.workers]
        assert len(app.control.add_consumer(self.shared, destination=names, reply=True, timeout=10)) == NODES
        for name, queue in self.own.items():
            assert app.control.add_consumer(queue, destination=[name], reply=True, timeout=10)

    def fetch_on(self, worker: WorkerProcess, symbol: str):
        """Send one symbol's quote fetch to the queue only ``worker`` consumes."""
        return fetch_quotes.apply_async(args=("crypto", [symbol]), queue=self.own[worker.hostname])

    def forget_provider_state(self) -> None:
        """Drop every limiter, breaker and pause key of the nodes' prefix."""
        client = redis.Redis.from_url(os.environ["REDIS_URL"])
        keys = list(client.scan_iter(match=f"{self.prefix}:*", count=500))
        if keys:
            client.delete(*keys)


@pytest.fixture(scope="module")
def quota_server() -> Iterator[FakeProviderServer]:
    """A fake provider server only the three nodes call: its request log holds their requests alone."""
    with FakeProviderServer() as server:
        yield server


@pytest.fixture(scope="module")
def nodes(celery_worker_process, quota_server: FakeProviderServer, django_db_blocker) -> Iterator[Nodes]:
    """Three worker nodes on one provider state (per broker run)."""
    require_real_services()
    require_service("redis")  # several nodes share provider state through Redis
    prefix = f"test-nodes-{uuid.uuid4().hex[:8]}"
    env = {
        "MARKET_DATA_MODE": "fake",
        "FAKE_PROVIDER_URL": quota_server.url,
        "BINANCE_RATE_LIMIT": f"{LIMIT}/second",
        "PROVIDER_RATE_LIMIT_MAX_WAIT": "40",  # below the soft limit; failing over would hide the limit
        "PROVIDER_STATE_PREFIX": prefix,
        "BREAKER_FAILURE_THRESHOLD": "3",
        "BREAKER_RESET_SECONDS": "60",  # stays open for the rest of its test
    }
    workers: list[WorkerProcess] = []
    try:
        for _ in range(NODES):
            workers.append(start_worker(env))
        group = Nodes(workers, quota_server, prefix)
        group.listen()
        yield group
    finally:
        for worker in workers:
            stop_worker(worker)
        Nodes(workers, quota_server, prefix).forget_provider_state()


@pytest.fixture
def fleet(nodes: Nodes, transactional_db, asset_types) -> Nodes:
    """The nodes with fresh provider state, a clean request log and 60 crypto assets (no backfills)."""
    nodes.forget_provider_state()
    nodes.server.clear_faults()
    nodes.server.clear_requests()
    Asset.objects.bulk_create(
        Asset(symbol=s, name=s, asset_type=asset_types["crypto"], binance_symbol=f"{s}USDT", coingecko_id=s.lower())
        for s in SYMBOLS
    )
    return nodes


def binance_times(server: FakeProviderServer) -> list[float]:
    """When each Binance request reached the server, once the log has stopped growing."""
    entries = server.requests("binance")
    for _ in range(20):
        time.sleep(0.1)
        again = server.requests("binance")
        if len(again) == len(entries):
            break
        entries = again
    return [datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp() for e in entries]


def test_three_nodes_never_exceed_one_shared_rate_limit(fleet: Nodes, broker: str) -> None:
    results = [fetch_quotes.apply_async(args=("crypto", [s]), queue=fleet.shared) for s in SYMBOLS]
    summaries = [r.get(timeout=120) for r in results]

    assert [s["stored_quotes"] for s in summaries] == [1] * len(SYMBOLS)
    ran_on = set(TaskResult.objects.filter(task_id__in=[r.id for r in results]).values_list("worker", flat=True))
    assert ran_on == {w.hostname for w in fleet.workers}, "every node must have sent requests"
    assert set(Quote.objects.values_list("source", flat=True)) == {"binance"}  # nothing failed over
    times = binance_times(fleet.server)
    assert len(times) == len(SYMBOLS)
    busiest = window_max(times, 1.0 - JITTER)
    assert busiest <= LIMIT, f"{broker}: {busiest} requests within {1.0 - JITTER:.2f} s across {NODES} nodes"
    # Six processes could go far faster: the run lasts as long as the shared quota demands.
    span = max(times) - min(times)
    assert span >= (len(SYMBOLS) - 1) // LIMIT - 0.01
    report(
        f"{NODES} worker nodes on {broker}: {len(times)} Binance requests in {span:.1f} s, "
        f"at most {busiest} in any {1.0 - JITTER:.1f} s (limit {LIMIT}/s shared)"
    )


def test_a_breaker_opened_by_one_node_keeps_every_node_away(fleet: Nodes, broker: str) -> None:
    first, *others = fleet.workers
    fleet.server.set_fault("binance", "status_500")
    for symbol in SYMBOLS[:3]:  # BREAKER_FAILURE_THRESHOLD failures, all on the first node
        assert fleet.fetch_on(first, symbol).get(timeout=60)["stored_quotes"] == 1  # CoinGecko served it
    assert len(binance_times(fleet.server)) == 3

    later = [fleet.fetch_on(node, symbol) for i, node in enumerate(others) for symbol in SYMBOLS[3 + 6 * i : 9 + 6 * i]]
    assert [r.get(timeout=60)["stored_quotes"] for r in later] == [1] * len(later)
    assert len(binance_times(fleet.server)) == 3, f"{broker}: another node asked Binance while its circuit was open"
    ran_on = set(TaskResult.objects.filter(task_id__in=[r.id for r in later]).values_list("worker", flat=True))
    assert ran_on == {w.hostname for w in others}
    assert set(Quote.objects.values_list("source", flat=True)) == {"coingecko"}


def test_a_retry_after_answered_to_one_node_is_honoured_by_every_node(fleet: Nodes, broker: str) -> None:
    first, *others = fleet.workers
    fleet.server.set_fault("binance", "status_429", count=1, retry_after=30)
    assert fleet.fetch_on(first, SYMBOLS[0]).get(timeout=60)["stored_quotes"] == 1
    paused_at = time.time()

    later = [fleet.fetch_on(node, symbol) for i, node in enumerate(others) for symbol in SYMBOLS[1 + 6 * i : 7 + 6 * i]]
    assert [r.get(timeout=60)["stored_quotes"] for r in later] == [1] * len(later)
    assert time.time() - paused_at < 30, "the checks below ran inside the pause"
    statuses = [e["status"] for e in fleet.server.requests("binance")]
    assert statuses == [429], f"{broker}: Binance was asked again during its Retry-After: {statuses}"
    assert Quote.objects.filter(source="coingecko").count() == 1 + len(later)
