"""Small pieces of the metrics plumbing: the token check, queue-wait stamps, dead processes' files, liveness."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from django.core.cache import cache

from backend.monitoring.token import bearer_token_ok
from backend.tasks import liveness
from backend.tasks.telemetry import multiproc
from backend.tasks.telemetry.celery_signals import SENT_AT_HEADER, queue_wait


@pytest.mark.parametrize(
    ("header", "expected", "ok"),
    [
        ("Bearer tok-123", "tok-123", True),
        ("bearer tok-123", "tok-123", True),
        ("Bearer tok-12", "tok-123", False),
        ("Basic tok-123", "tok-123", False),
        ("", "tok-123", False),
        ("Bearer ", "", False),  # an empty token never opens the door
    ],
)
def test_bearer_token(header: str, expected: str, ok: bool) -> None:
    assert bearer_token_ok(header, expected) is ok


def test_queue_wait_counts_from_the_publish_stamp_or_the_later_eta() -> None:
    sent = 1_000.0
    assert queue_wait(SimpleNamespace(**{SENT_AT_HEADER: sent, "eta": None}), 1_004.0) == 4.0
    eta = datetime.fromtimestamp(1_010.0, UTC).isoformat()  # a retry's countdown is not waiting
    assert queue_wait(SimpleNamespace(**{SENT_AT_HEADER: sent, "eta": eta}), 1_012.5) == 2.5
    assert queue_wait(SimpleNamespace(headers={SENT_AT_HEADER: str(sent)}, eta=None), 1_001.0) == 1.0
    assert queue_wait(SimpleNamespace(headers={}, eta=None), 1_001.0) is None


def test_the_files_of_ended_processes_go_and_live_ones_stay(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setattr(multiproc, "enabled", lambda: True)
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid, live_pid = int(ended.stdout), os.getpid()
    host = multiproc.process_identifier().rsplit("-", 1)[0]
    names = [
        f"counter_{host}-{dead_pid}.db",
        f"gauge_livesum_{host}-{dead_pid}.db",
        f"counter_{host}-{live_pid}.db",
        f"gauge_livesum_{host}-{live_pid}.db",
        f"counter_otherhost-{dead_pid}.db",  # another container's: not ours to judge
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"")

    assert multiproc.remove_dead_files(live_gauges_only=True) == 1
    assert not (tmp_path / names[1]).exists() and (tmp_path / names[0]).exists()
    assert multiproc.remove_dead_files() == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[2:])


def test_a_worker_counts_as_gone_after_three_silent_intervals(settings) -> None:
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.WORKER_LIVENESS_SECONDS = 10
    cache.clear()
    liveness.publish("a@host", ["high", "low"], now=1_000.0)
    liveness.publish("b@host", ["high"], now=1_020.0)
    assert liveness.live_workers(["high", "low", "medium"], now=1_025.0) == {
        "high": ["a@host", "b@host"],
        "low": ["a@host"],
        "medium": [],
    }
    assert liveness.live_workers(["high", "low"], now=1_031.0) == {"high": ["b@host"], "low": []}
    liveness.publish("b@host", ["high"], now=1_032.0, present=False)  # a warm shutdown withdraws at once
    assert liveness.live_workers(["high"], now=1_033.0) == {"high": []}
