"""The runbook's dead-letter examples, run as written against real dead letters.

A real worker fetches quotes through the real provider chains pointed at the fake provider server,
with every provider of both chains answering 503: the stock batch fails through Yahoo and Alpha
Vantage, the crypto batch through Binance, CoinGecko and CoinMarketCap, each after its retries. Then
every ``bin/manage deadletters`` line of docs/OPERATIONS.md's dead-letter section runs in the
order the runbook gives them, with the ids ``42``/``43`` standing for the rows they mean there, and
each is checked for what the runbook says it does. A doc line without a check here fails the test, so
the runbook and this test cannot drift apart.

The worker runs with one retry and one-second backoff so the outage is dead-lettered in seconds.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterator
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from backend import deadletters
from backend.core.celery import app
from backend.deadletters import FALLBACK_REDIS_KEY, parking, storage
from backend.deadletters.models import DeadLetter
from backend.market.models import Asset
from backend.tasks import tasks
from tests.fixtures.waiting import wait_for
from tests.fixtures.worker import WorkerProcess, swapped_worker

# The runbook's flush and parked examples read the Redis fallback list.
pytestmark = [pytest.mark.integration, pytest.mark.redis]

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "OPERATIONS.md"
QUICK_RETRIES = {"TASK_MAX_RETRIES": "1", "TASK_RETRY_DELAY_FLOOR": "1", "TASK_RETRY_BACKOFF_MAX": "2"}
STOCK_CHAIN = ("yahoo", "alphavantage")
CRYPTO_CHAIN = ("binance", "coingecko", "coinmarketcap")


def runbook_commands() -> list[str]:
    """Every ``bin/manage deadletters`` line of the runbook's dead-letter section, in order."""
    text = RUNBOOK.read_text()
    section = text[text.index("## Dead letters") :]
    section = section[: section.index("\n## ", 1)]
    return [m.group(1).strip() for m in re.finditer(r"^\s+(bin/manage deadletters .+)$", section, re.M)]


def run(command: str, ids: dict[str, int]) -> str:
    """Run one runbook line through call_command, the runbook's example ids replaced by real ones."""
    words = [str(ids.get(word, word)) for word in shlex.split(command)[1:]]
    out = StringIO()
    call_command(*words, stdout=out, stderr=out)
    return out.getvalue()


def open_ids() -> set[int]:
    """Ids of every open dead letter in the database."""
    return set(DeadLetter.objects.filter(state=DeadLetter.State.OPEN).values_list("pk", flat=True))


def listed_ids(out: str) -> set[int]:
    return {int(m.group(1)) for m in re.finditer(r"^\s*(\d+)  ", out, re.M)}


def outcome(out: str, name: str) -> int:
    """The row count of one outcome in a bulk summary table (0 when absent)."""
    match = re.search(rf"^{re.escape(name)} +(\d+)", out, re.M)
    return int(match.group(1)) if match else 0


@pytest.fixture(scope="module")
def quick_worker(celery_worker_process: WorkerProcess, django_db_blocker) -> Iterator[WorkerProcess]:
    """The session worker with one quick retry (the real chains, the fake provider server)."""
    with swapped_worker(celery_worker_process, QUICK_RETRIES, django_db_blocker) as worker:
        yield worker


@pytest.fixture
def outage(quick_worker, live_worker, providers, asset_types):
    """Every provider of the stock and crypto quote chains answers 503 until cleared.

    The assets are bulk-created: no save signal, so no history backfill fails alongside and adds
    dead letters the runbook's counts would have to allow for.
    """
    stock, crypto = asset_types["stock"], asset_types["crypto"]
    Asset.objects.bulk_create(
        [Asset(symbol=s, name=s, asset_type=stock) for s in ("AAPL", "MSFT")]
        + [
            Asset(symbol=s, name=s, asset_type=crypto, binance_symbol=f"{s}USDT", coingecko_id=s.lower())
            for s in ("BTC", "ETH")
        ]
    )
    for provider in (*STOCK_CHAIN, *CRYPTO_CHAIN):
        providers.set_fault(provider, "status_503")
    client = storage.redis_client()
    client.delete(FALLBACK_REDIS_KEY, parking.PARKED_REDIS_KEY)
    yield providers
    client.delete(FALLBACK_REDIS_KEY, parking.PARKED_REDIS_KEY)


def dead_letter(task_id: str) -> DeadLetter | None:
    return DeadLetter.objects.filter(task_id=task_id).first()


def test_every_runbook_example_works_as_written(outage, quick_worker) -> None:
    stock_task = tasks.fetch_quotes.delay("stock", ["AAPL", "MSFT"])
    crypto_task = tasks.fetch_quotes.delay("crypto", ["BTC", "ETH"])
    assert wait_for(lambda: dead_letter(stock_task.id) and dead_letter(crypto_task.id)), quick_worker.log()[-4000:]
    stock, crypto = dead_letter(stock_task.id), dead_letter(crypto_task.id)
    assert stock.provider_list == list(STOCK_CHAIN), stock.provider_failures
    assert crypto.provider_list == list(CRYPTO_CHAIN), crypto.provider_failures
    assert "TransientProviderError" in stock.lineage_names

    ids = {"42": stock.pk}
    state: dict[str, DeadLetter] = {}

    def replay_crypto_into_a_second_failure() -> None:
        """The runbook's 43: a replay that failed again (the crypto providers are still down)."""
        new_id = deadletters.replay(crypto, actor="test:ops")
        assert wait_for(lambda: dead_letter(new_id)), quick_worker.log()[-4000:]
        state["again"] = dead_letter(new_id)
        ids["43"] = state["again"].pk

    def stock_providers_recover() -> None:
        """The runbook says: wait until the providers are healthy, then replay."""
        for provider in STOCK_CHAIN:
            outage.clear_faults(provider)

    def a_task_with_a_huge_argument_fails() -> None:
        """The runbook's 44: a dead letter whose arguments were cut (a 100,000-character "symbol",
        refused by the task without asking a provider)."""
        sent = tasks.fetch_quotes.delay("stock", ["A" * 100_000])
        assert wait_for(lambda: dead_letter(sent.id)), quick_worker.log()[-4000:]
        state["cut"] = dead_letter(sent.id)
        assert state["cut"].arguments_truncated
        ids["44"] = state["cut"].pk

    def a_newer_sender_reaches_this_worker() -> None:
        """A task name the running worker has not registered (a rolling deploy): dead-lettered, not dropped."""
        sent = app.send_task("quotes.fetch_v2", args=["stock", ["AAPL"]], queue="high")
        assert wait_for(lambda: dead_letter(sent.id)), quick_worker.log()[-4000:]
        state["unregistered"] = dead_letter(sent.id)

    # What happens in the world between two runbook steps.
    before: dict[str, Callable[[], None]] = {
        "replay --all-matching --state open --provider yahoo": stock_providers_recover,
        "list --state failed_again": replay_crypto_into_a_second_failure,
        "replay 44 --confirm-truncated": a_task_with_a_huge_argument_fails,
        "list --origin unregistered": a_newer_sender_reaches_this_worker,
    }
    checks: dict[str, Callable[[str], None]] = {
        # Exactly the open rows, ours among them: the shared worker may still be finishing an earlier
        # test's backfill whose asset was flushed under it (an extra open row that is not ours).
        "list --state open": lambda out: (
            listed_ids(out) == open_ids() and {stock.pk, crypto.pk} <= listed_ids(out) or pytest.fail(out)
        ),
        "list --provider yahoo": lambda out: listed_ids(out) == {stock.pk} or pytest.fail(out),
        "list --task quotes.fetch --exception TransientProviderError --since 2025-06-01": lambda out: (
            {stock.pk, crypto.pk} <= listed_ids(out) or pytest.fail(out)
        ),
        "list --provider coingecko --symbol BTC": lambda out: {crypto.pk} <= listed_ids(out) or pytest.fail(out),
        "show 42": lambda out: all(f"  {p}: " in out for p in STOCK_CHAIN) or pytest.fail(out),
        "replay 42 --dry-run": lambda out: outcome(out, "replayed") == 1 and "nothing sent" in out or pytest.fail(out),
        "replay --all-matching --state open --provider yahoo --dry-run": lambda out: (
            outcome(out, "replayed") == 1 or pytest.fail(out)
        ),
        "replay --all-matching --state open --provider yahoo": lambda out: (
            outcome(out, "replayed") == 1 or pytest.fail(out),
            wait_for(lambda: dead_letter(stock_task.id).state == DeadLetter.State.RESOLVED)
            or pytest.fail(quick_worker.log()[-4000:]),
        ),
        "list --state failed_again": lambda out: listed_ids(out) == {crypto.pk} or pytest.fail(out),
        "show 43": lambda out: (
            f"{crypto.pk}  replay failed again" in out and f"{ids['43']}  open" in out or pytest.fail(out)
        ),
        "replay 44 --confirm-truncated": lambda out: outcome(out, "replayed") == 1 or pytest.fail(out),
        "discard --all-matching --state open --provider coingecko --dry-run": lambda out: (
            outcome(out, "discarded") == 1 and "nothing changed" in out or pytest.fail(out)
        ),
        "discard --all-matching --state open --provider coingecko": lambda out: (
            outcome(out, "discarded") == 1 or pytest.fail(out)
        ),
        "discard --all-matching --task quotes.fetch --until 2025-06-01": lambda out: (
            re.search(r"^total +0$", out, re.M) or pytest.fail(out)
        ),
        "list --origin unregistered": lambda out: (
            listed_ids(out) == {state["unregistered"].pk} and "(unregistered task)" in out or pytest.fail(out)
        ),
        "flush --dry-run": lambda out: "dry run: would flush 0, 0 remaining" in out or pytest.fail(out),
        "flush": lambda out: "flushed 0, 0 remaining, 0 parked" in out or pytest.fail(out),
        "parked": lambda out: "0 parked records" in out or pytest.fail(out),
        "parked --clear": lambda out: "cleared 0 parked records" in out or pytest.fail(out),
    }
    commands = runbook_commands()
    assert [c.split("deadletters ", 1)[1] for c in commands] == list(checks), "runbook and test disagree"

    for command in commands:
        example = command.split("deadletters ", 1)[1]
        if example in before:
            before[example]()
        checks[example](run(command, ids))

    stock.refresh_from_db()
    crypto.refresh_from_db()
    assert stock.get_state_display() == "replay succeeded"
    assert list(stock.actions.values_list("kind", "result")) == [("replay", "sent"), ("outcome", "succeeded")]
    assert crypto.replayed_as == state["again"] and crypto.state == DeadLetter.State.FAILED_AGAIN
    state["again"].refresh_from_db()
    assert state["again"].state == DeadLetter.State.DISCARDED
    assert state["again"].actions.filter(kind="discard", result="discarded").exists()
