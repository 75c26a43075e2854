"""Every process knows the platform's tasks: admin offers them in the periodic task form."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.db import connections
from django.urls import reverse

from backend.tasks.schedules import SCHEDULES
from tests.fixtures.worker import subprocess_env

REPO_DIR = Path(__file__).resolve().parents[3]

# What a web process does on start (wsgi.py: settings, then django.setup()), then the registry.
WEB_PROCESS = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.core.settings")
import django
django.setup()
from backend.core import celery_app
print(",".join(sorted(name for name in celery_app.tasks if not name.startswith("celery."))))
"""


def test_a_fresh_web_process_registers_every_scheduled_task() -> None:
    result = subprocess.run(
        [sys.executable, "-c", WEB_PROCESS],
        env=subprocess_env(),
        cwd=REPO_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    registered = set(result.stdout.strip().splitlines()[-1].split(","))
    assert {entry.task for entry in SCHEDULES} <= registered
    assert {"quotes.fetch", "indicators.compute", "history.backfill"} <= registered


@pytest.mark.django_db(transaction=True)
def test_the_periodic_task_form_lists_our_tasks(admin_client) -> None:
    # A threaded server (runserver, gunicorn gthread) renders admin outside the main thread,
    # where Celery's thread-local current app is not set: render it the same way.
    responses = []

    def render() -> None:
        try:
            responses.append(admin_client.get(reverse("admin:django_celery_beat_periodictask_add")))
        finally:
            connections.close_all()  # this thread's connection, or the test database cannot be dropped

    page = threading.Thread(target=render)
    page.start()
    page.join(30)
    (response,) = responses
    assert response.status_code == 200
    choices = dict(response.context["adminform"].form.fields["regtask"].widget.choices)
    assert "quotes.dispatch" in choices
    assert {entry.task for entry in SCHEDULES} <= choices.keys()
    assert '<option value="quotes.dispatch">' in response.content.decode()
