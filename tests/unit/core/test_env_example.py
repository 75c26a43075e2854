""".env.example through every entry point exactly as docker compose starts them (issue 22).

``cp .env.example .env`` once stopped every container at start (a variable the settings refuse) and
nothing noticed. Here the copied file fills docker-compose.yml and becomes each container's
environment (tests/fixtures/compose.py); each app service's own command then runs in a subprocess.
With the shipped placeholders every one of them must refuse at once, naming each placeholder; with
the placeholders replaced (and nothing else changed) the settings must load. Starting the whole stack
with real secrets is tests/integration/test_production_section.py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from backend.stack.commands import APP
from tests.fixtures.compose import DOCKERFILE, ENV_EXAMPLE, REPO_DIR, ComposeProject, read_env_file

VENV_BIN = REPO_DIR / ".venv" / "bin"
NEW_ENV = REPO_DIR / "bin" / "new_env.py"
PLACEHOLDER = "change-me"
# No service answers there: a process that got past its start-up checks fails connecting instead.
NOWHERE = {"postgres": 9, "redis": 9}


def placeholders() -> list[str]:
    """The variables .env.example ships with a placeholder, as an operator reads it."""
    return [name for name, value in read_env_file(ENV_EXAMPLE).items() if PLACEHOLDER in value]


def project_with(tmp_path: Path, replace: bool) -> ComposeProject:
    """A checkout's .env: .env.example copied as it is, or written by ``bin/new_env.py`` as the README says."""
    if replace:
        shutil.copy(ENV_EXAMPLE, tmp_path / ".env.example")
        subprocess.run([sys.executable, str(NEW_ENV)], cwd=tmp_path, check=True, capture_output=True, timeout=60)
    else:
        shutil.copy(ENV_EXAMPLE, tmp_path / ".env")
    return ComposeProject(tmp_path)


def run(project: ComposeProject, service: str, tmp_path: Path, command: list[str] | None = None):
    container = project.container(service).localized(
        var_dir=tmp_path / service / "var", static_dir=tmp_path / "static", hosts=NOWHERE,
        ports={port: 9 for port in project.container(service).container_ports}, bin_dir=VENV_BIN,
    )  # fmt: skip
    return subprocess.run(
        command or container.command, cwd=REPO_DIR, env=container.environment,
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip


def test_env_example_ships_a_placeholder_for_every_secret_compose_requires() -> None:
    assert set(placeholders()) == {
        "DJANGO_SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD", "FLOWER_BASIC_AUTH", "METRICS_TOKEN",
    }  # fmt: skip


@pytest.mark.parametrize("service", ComposeProject.app_service_names())
def test_with_its_placeholders_every_entry_point_refuses_naming_each(tmp_path: Path, service: str) -> None:
    result = run(project_with(tmp_path, replace=False), service, tmp_path)

    assert result.returncode == 2, result.stdout + result.stderr
    (line,) = result.stderr.strip().splitlines()  # one line, nothing else
    assert line.startswith("configuration error: weak secrets")
    for name in placeholders():
        assert name in line, f"{name} not named: {line}"
    assert PLACEHOLDER not in line.replace("change-me)", "")  # names, never values


@pytest.mark.parametrize("service", ComposeProject.app_service_names())
def test_with_real_secrets_every_entry_point_gets_past_its_start_up_checks(tmp_path: Path, service: str) -> None:
    project = project_with(tmp_path, replace=True)
    command = project.container(service).command
    # The service's own program, asked only to load the app and its settings: its first step after
    # the checks would connect to PostgreSQL or Redis, which the integration test gives it.
    if command[:3] == ["celery", "-A", APP]:
        check = [*command[:3], "report"]
    elif command[0] == "gunicorn":
        check = ["gunicorn", "--check-config", *command[1:]]
    else:
        check = ["python", "backend/manage.py", "check"]
    result = run(project, service, tmp_path, command=[shutil.which(check[0], path=VENV_BIN) or check[0], *check[1:]])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "configuration error" not in result.stderr


def test_the_images_collectstatic_step_passes_the_start_up_checks(tmp_path: Path) -> None:
    """The Dockerfile loads the settings to collect static files: its throwaway secrets must pass too."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    (step,) = [line[4:] for line in text.splitlines() if line.startswith("RUN ") and "collectstatic" in line]
    env = {
        "PATH": f"{VENV_BIN}:/usr/bin:/bin", "PYTHONPATH": str(REPO_DIR), "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "backend.core.settings", "FINANCEHUB_VAR_DIR": str(tmp_path / "var"),
        "DJANGO_STATIC_ROOT": str(tmp_path / "static"),
    }  # fmt: skip
    result = subprocess.run(["sh", "-c", step], cwd=REPO_DIR, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "static" / "admin" / "css" / "base.css").exists()
    assert not (tmp_path / "var").exists() or not any((tmp_path / "var").iterdir())  # no secret left in a layer


def test_new_env_gives_each_secret_its_own_value_long_enough_and_never_overwrites(tmp_path: Path) -> None:
    shutil.copy(ENV_EXAMPLE, tmp_path / ".env.example")
    written = subprocess.run([sys.executable, str(NEW_ENV)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert written.returncode == 0, written.stderr
    values = read_env_file(tmp_path / ".env")
    secrets_written = [values[name].removeprefix("flower:") for name in placeholders()]
    assert len(set(secrets_written)) == len(secrets_written)  # never two alike
    assert min(map(len, secrets_written)) >= 64  # past every minimum (DJANGO_SECRET_KEY 50)
    # Commented settings too: uncommenting DJANGO_SUPERUSER_PASSWORD for the first admin needs no edit.
    assert PLACEHOLDER not in (tmp_path / ".env").read_text()
    assert (tmp_path / ".env").stat().st_mode & 0o077 == 0
    again = subprocess.run([sys.executable, str(NEW_ENV)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "exists" in again.stderr
    assert read_env_file(tmp_path / ".env") == values
