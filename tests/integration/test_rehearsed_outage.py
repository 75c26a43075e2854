"""An operator rehearses a provider outage on the demo stack, end to end through a real worker.

`rehearse_faults` turns the simulated provider's faults on where every worker reads them: a quote
fetch retries and ends as a dead letter naming the simulated provider; once the faults are off, the
dashboard's Replay stores the quote and the dead letter reads "replay succeeded".
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.management import call_command
from django.urls import reverse

from backend.deadletters.models import DeadLetter
from backend.market.models import Asset, AssetType, Quote
from backend.tasks import rehearsal, tasks
from tests.fixtures.waiting import wait_for
from tests.fixtures.worker import WorkerProcess, require_alive, swapped_worker

pytestmark = pytest.mark.integration

# The demo stack's provider, and few, short retries so the dead letter comes within seconds.
WORKER_ENV = {
    "MARKET_DATA_MODE": "simulated",
    "TASK_MAX_RETRIES": "2",
    "TASK_RETRY_DELAY_FLOOR": "1",
    "TASK_RETRY_BACKOFF_MAX": "2",
}


@pytest.fixture(scope="module")
def simulated_worker(celery_worker_process: WorkerProcess, django_db_blocker) -> Iterator[WorkerProcess]:
    """The session worker restarted on the simulated provider (and restored afterwards)."""
    with swapped_worker(celery_worker_process, WORKER_ENV, django_db_blocker) as worker:
        yield worker


@pytest.fixture
def worker(simulated_worker: WorkerProcess, transactional_db, settings) -> Iterator[WorkerProcess]:
    settings.MARKET_DATA_MODE = "simulated"  # what the operator's shell reads, as on the demo stack
    require_alive(simulated_worker)
    rehearsal.stop()
    yield simulated_worker
    rehearsal.stop()


def test_a_rehearsed_outage_retries_dead_letters_and_a_replay_after_it_succeeds(worker, admin_client) -> None:
    crypto = AssetType.objects.create(code="crypto", name="Crypto")
    # bulk_create: no backfill task of its own (the creation signal) to fail during the rehearsal.
    Asset.objects.bulk_create([Asset(symbol="BTC", name="Bitcoin", asset_type=crypto, binance_symbol="BTCUSDT")])

    call_command("rehearse_faults", "--rate", "1", "--minutes", "5")
    sent = tasks.fetch_quotes.delay("crypto", ["BTC"])

    assert wait_for(lambda: DeadLetter.objects.filter(task_id=sent.id).exists()), worker.log()[-3000:]
    letter = DeadLetter.objects.get(task_id=sent.id)
    assert letter.state == DeadLetter.State.OPEN and letter.retries == 2
    assert letter.provider_list == ["simulated"] and letter.symbol_list == ["BTC"]
    assert "fault rehearsal" in letter.exception_message
    assert worker.log().count(f"quotes.fetch[{sent.id}] retry") == 2
    assert not Quote.objects.exists()
    page = admin_client.get("/").content.decode()
    assert "Fault rehearsal on" in page and f'data-id="{letter.pk}"' in page

    call_command("rehearse_faults", "--off")
    response = admin_client.post(reverse("dashboard-replay", args=[letter.pk]))
    assert response.status_code == 302

    assert wait_for(lambda: DeadLetter.objects.get(pk=letter.pk).state == DeadLetter.State.RESOLVED), worker.log()[
        -3000:
    ]
    assert Quote.objects.get(asset__symbol="BTC").source == "simulated"
    assert DeadLetter.objects.count() == 1  # the replay left no dead letter of its own
