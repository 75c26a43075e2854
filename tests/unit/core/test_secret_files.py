"""Generated secrets (the secret key, the scrape token, make run's credentials) are owner-only from the first byte."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.core.environment import persistent_secret, write_secret_file


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that masks nothing: the mode must come from the code, not from a careful shell."""
    previous = os.umask(0)
    yield
    os.umask(previous)


@pytest.fixture
def modes_at_write(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The permission bits of every file at the moment a byte is written into it."""
    seen: list[int] = []
    real_write = os.write

    def spy(descriptor: int, data: bytes) -> int:
        seen.append(stat.S_IMODE(os.fstat(descriptor).st_mode))
        return real_write(descriptor, data)

    monkeypatch.setattr(os, "write", spy)
    return seen


def test_a_generated_secret_is_never_readable_by_others(tmp_path: Path, open_umask, modes_at_write) -> None:
    value = persistent_secret(tmp_path / "var", "django_secret_key")
    path = tmp_path / "var" / "django_secret_key"
    assert modes_at_write == [0o600]  # already owner-only when its first byte went in
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(value) >= 50 and path.read_text() == value
    assert persistent_secret(tmp_path / "var", "django_secret_key") == value  # kept, not regenerated
    assert sorted(p.name for p in (tmp_path / "var").iterdir()) == ["django_secret_key"]  # no temporary left


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "metrics_token"
    assert write_secret_file(path, "first")
    assert not write_secret_file(path, "second")
    assert path.read_text() == "first"


def test_processes_starting_together_agree_on_one_secret(tmp_path: Path) -> None:
    results: list[str] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        results.append(persistent_secret(tmp_path, "metrics_token"))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1 and results[0]


def test_make_runs_credentials_are_owner_only_too(tmp_path: Path, open_umask, modes_at_write) -> None:
    from backend.core.management.commands.prepare_stack import _credential

    password = _credential(tmp_path / "flower_credentials", "flower")
    assert modes_at_write == [0o600]
    assert (tmp_path / "flower_credentials").read_text() == f"flower:{password}\n"
    assert _credential(tmp_path / "flower_credentials", "flower") == password
