"""`rehearse_faults` turns the simulated provider's faults on for a while, where every worker reads them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import CommandError, call_command

from backend.providers.errors import TransientProviderError
from backend.tasks import rehearsal
from backend.tasks.sources import reset_sources, simulated_client

NOW = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)  # a Saturday: rehearsals run on any day

pytestmark = pytest.mark.usefixtures("db", "empty_cache")


def test_a_rehearsal_holds_its_rate_until_its_end_and_then_is_over() -> None:
    with time_machine.travel(NOW, tick=False):
        started = rehearsal.start(0.5, 10)
        assert started == rehearsal.FaultRehearsal(0.5, NOW + timedelta(minutes=10))
        assert rehearsal.current() == started and rehearsal.fault_rate() == 0.5
    with time_machine.travel(NOW + timedelta(minutes=10, seconds=1), tick=False):
        assert rehearsal.current() is None and rehearsal.fault_rate() == 0.0


def test_stopping_ends_it_at_once() -> None:
    rehearsal.start(1.0, 10)
    assert rehearsal.stop() is True
    assert rehearsal.fault_rate() == 0.0 and rehearsal.stop() is False


@pytest.mark.parametrize(("rate", "minutes"), [(0, 10), (1.5, 10), (-1, 10), (0.5, 0), (0.5, 24 * 60 + 1)])
def test_a_rate_or_a_duration_out_of_range_is_refused(rate: float, minutes: float) -> None:
    with pytest.raises(CommandError):
        call_command("rehearse_faults", "--rate", str(rate), "--minutes", str(minutes))
    assert rehearsal.current() is None


def test_the_command_turns_faults_on_shows_them_and_turns_them_off(capsys) -> None:
    with time_machine.travel(NOW, tick=False):
        call_command("rehearse_faults", "--rate", "1", "--minutes", "5")
        assert capsys.readouterr().out.strip() == (
            "fault rehearsal on: the simulated provider fails 100% of calls until 2026-11-28 15:05:00 UTC "
            "(rehearse_faults --off ends it)"
        )
        call_command("rehearse_faults")
        assert "fails 100% of calls until 2026-11-28 15:05:00 UTC" in capsys.readouterr().out
        call_command("rehearse_faults", "--off")
        assert capsys.readouterr().out.strip() == "fault rehearsal stopped"
        call_command("rehearse_faults")
        assert capsys.readouterr().out.strip() == "no fault rehearsal running"


def test_the_command_refuses_when_the_simulated_provider_is_not_in_use(settings) -> None:
    settings.MARKET_DATA_MODE = "fake"
    with pytest.raises(CommandError, match="MARKET_DATA_MODE is fake: fault rehearsal needs the simulated provider"):
        call_command("rehearse_faults", "--rate", "1")
    assert rehearsal.current() is None


def test_the_workers_simulated_client_reads_the_shared_rate_on_each_call() -> None:
    reset_sources()
    client = simulated_client()
    assert client.fetch_quotes(["AAPL"]).quotes
    rehearsal.start(1.0, 10)
    with pytest.raises(TransientProviderError, match="fault rehearsal"):
        client.fetch_quotes(["AAPL"])
    rehearsal.stop()
    assert client.fetch_quotes(["AAPL"]).quotes


def test_an_unreadable_cache_means_no_faults_not_a_failed_fetch(monkeypatch) -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    def broken(*args, **kwargs):
        raise RedisConnectionError("redis is down")

    monkeypatch.setattr(rehearsal.cache, "get", broken)
    assert rehearsal.fault_rate() == 0.0
