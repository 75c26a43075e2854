"""A task's log fields: bound when it starts, from its request and arguments; gone when it ends."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

from backend.common import logcontext
from backend.tasks import log_fields


def task(name: str = "quotes.fetch", routing_key: str | None = "high") -> SimpleNamespace:
    info = {"routing_key": routing_key} if routing_key else None
    return SimpleNamespace(name=name, request=SimpleNamespace(delivery_info=info))


def test_fields_name_the_task_its_queue_and_the_symbols_in_its_arguments() -> None:
    fields = log_fields.fields_of(task(), "t-1", ("stock", ["AAPL", "BRK.B"]), {"run_id": 4, "batch": 0})
    assert fields == {"task_id": "t-1", "task_name": "quotes.fetch", "queue": "high", "symbols": ["AAPL", "BRK.B"]}
    bare = log_fields.fields_of(task("maintenance.heartbeat", None), "t-2", (), {})
    assert bare == {"task_id": "t-2", "task_name": "maintenance.heartbeat", "queue": None, "symbols": None}


def test_prerun_binds_and_postrun_restores_even_for_a_task_run_inside_another() -> None:
    log_fields.bind_task_fields(task_id="outer", task=task(), args=("stock", ["AAPL"]), kwargs={})
    log_fields.bind_task_fields(task_id="inner", task=task("indicators.compute", "low"), args=([1, 2],), kwargs={})
    assert logcontext.current() == {"task_id": "inner", "task_name": "indicators.compute", "queue": "low"}
    log_fields.clear_task_fields(task_id="inner")
    assert logcontext.current()["task_id"] == "outer" and logcontext.current()["symbols"] == ["AAPL"]
    log_fields.clear_task_fields(task_id="outer")
    assert logcontext.current() == {}


def test_postrun_without_a_prerun_leaves_nothing_behind() -> None:
    logcontext.bind(task_id="stale")
    log_fields.clear_task_fields(task_id="never-started")
    assert logcontext.current() == {}


def test_every_django_process_connects_the_receivers_at_start_up() -> None:
    # A fresh interpreter: this test module's own import must not be what connects them.
    script = (
        "import django; django.setup()\n"
        "from types import SimpleNamespace\n"
        "from celery.signals import task_prerun\n"
        "from backend.common import logcontext\n"
        "task = SimpleNamespace(name='quotes.fetch', request=SimpleNamespace(delivery_info={'routing_key': 'high'}))\n"
        "task_prerun.send(sender=None, task_id='t-9', task=task, args=('stock', ['AAPL']), kwargs={})\n"
        "print(sorted(logcontext.current().items()))\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "backend.core.settings"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == (
        "[('queue', 'high'), ('symbols', ['AAPL']), ('task_id', 't-9'), ('task_name', 'quotes.fetch')]"
    )
