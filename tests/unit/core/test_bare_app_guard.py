"""The bare app's start-up guard: refuses a worker or beat only when no task module is configured."""

from __future__ import annotations

import pytest

from backend.core.celery import app, refuse_without_task_modules


class _Process:
    """What worker and beat signals send: an object carrying the app it runs."""

    def __init__(self, carried: object) -> None:
        self.app = carried


def test_refuses_the_bare_app(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(app.conf, "imports", ())
    with pytest.raises(SystemExit) as stopped:
        refuse_without_task_modules(sender=_Process(app))
    assert stopped.value.code == 2
    assert "celery -A backend.stack" in capsys.readouterr().err


def test_passes_once_the_composition_root_named_the_task_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.conf, "imports", ("backend.tasks.tasks",))
    refuse_without_task_modules(sender=_Process(app))


def test_leaves_another_app_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test app's in-process worker (pytest-celery) starts no task modules of ours and is not ours to stop."""
    monkeypatch.setitem(app.conf, "imports", ())
    refuse_without_task_modules(sender=_Process(object()))
