"""Healthchecks of the containers: the web probe and beat's heartbeat-age command."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from backend.monitoring.health import BEAT_MAX_AGE_SECONDS
from backend.monitoring.probe import host_header, main, probe
from backend.tasks.models import Heartbeat


def test_the_probe_sends_a_host_that_allowed_hosts_accepts() -> None:
    assert host_header(["financehub.example.com", "localhost"]) == "financehub.example.com"
    assert host_header([".example.com"]) == "example.com"
    assert host_header(["*"]) == "localhost"
    assert host_header([]) == "localhost"


def test_the_probe_passes_on_health_live(live_server, settings) -> None:
    settings.ALLOWED_HOSTS = ["financehub.example.com"]
    assert main([f"{live_server.url}/health/live"]) == 0


def test_the_probe_fails_when_django_refuses_the_host(live_server, settings) -> None:
    settings.ALLOWED_HOSTS = ["financehub.example.com"]
    assert not probe(f"{live_server.url}/health/live", "not-allowed.example.org")


def test_the_probe_fails_when_nothing_listens() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert main([f"http://127.0.0.1:{port}/health/live"]) == 1


@pytest.mark.django_db
def test_beat_alive_passes_on_a_recent_heartbeat(capsys) -> None:
    Heartbeat.objects.create(component="beat", last_seen=timezone.now() - timedelta(seconds=30))
    call_command("beat_alive", "--max-age", "180")
    assert "beat alive" in capsys.readouterr().out


@pytest.mark.django_db
def test_beat_alive_fails_on_a_stale_heartbeat() -> None:
    Heartbeat.objects.create(component="beat", last_seen=timezone.now() - timedelta(seconds=200))
    with pytest.raises(CommandError, match="stale"):
        call_command("beat_alive", "--max-age", "180")
    call_command("beat_alive", "--max-age", "300")  # the threshold is the operator's


@pytest.mark.django_db
def test_beat_alive_fails_before_any_heartbeat_and_defaults_to_the_readiness_threshold() -> None:
    with pytest.raises(CommandError, match="no heartbeat"):
        call_command("beat_alive")
    Heartbeat.objects.create(component="beat", last_seen=timezone.now() - timedelta(seconds=BEAT_MAX_AGE_SECONDS + 5))
    with pytest.raises(CommandError):
        call_command("beat_alive")
