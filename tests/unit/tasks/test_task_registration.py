"""Every process knows the platform's tasks: admin offers them in the periodic task form."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.db import connections
from django.urls import reverse
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from backend.tasks.schedules import SCHEDULES, sync_schedules
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


@pytest.mark.django_db
def test_an_existing_rows_task_is_selected_in_the_registered_list_and_saves_unchanged(admin_client) -> None:
    sync_schedules()
    row = PeriodicTask.objects.get(name="quotes: crypto")
    url = reverse("admin:django_celery_beat_periodictask_change", args=[row.pk])
    response = admin_client.get(url)
    form = response.context["adminform"].form
    assert (form.initial["regtask"], form.initial["task"]) == ("quotes.dispatch", "")
    page = response.content.decode()
    assert '<option value="quotes.dispatch" selected>' in page
    assert '<input type="text" name="task" maxlength="200" id="id_task">' in page  # "custom" left empty

    data = {key: value for key, value in form.initial.items() if value is not None}
    data.update(interval=row.interval_id, enabled="on", description="my words", args="[]", kwargs=row.kwargs)
    data = {key: value for key, value in data.items() if key not in {"crontab", "solar", "clocked", "last_run_at"}}
    response = admin_client.post(url, {**data, "headers": "{}", "start_time_0": "", "start_time_1": ""})
    assert response.status_code == 302, response.context["adminform"].form.errors
    row.refresh_from_db()
    assert (row.task, row.description) == ("quotes.dispatch", "my words")


@pytest.mark.django_db
def test_a_task_no_process_registers_stays_in_the_custom_field(admin_client) -> None:
    interval = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    row = PeriodicTask.objects.create(name="someone's", task="not.registered", interval=interval)
    form = (
        admin_client.get(reverse("admin:django_celery_beat_periodictask_change", args=[row.pk]))
        .context["adminform"]
        .form
    )
    assert form.initial.get("regtask") is None and form.initial["task"] == "not.registered"
