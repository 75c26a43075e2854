"""The README's "Production shape" section, followed literally on this checkout's files (issue 22).

Its shell block is the recipe: ``python3 bin/new_env.py`` (each change-me its own secret) and add the
first admin; ``docker compose up -d
--build``; ``docker compose ps`` until every service is healthy. No Docker engine runs here, so ``up``
is tests/fixtures/compose_stack.py: PostgreSQL and Redis set up as their images and the compose file
set them up, then each app container's own command with the environment compose would give it, judged
by its own healthcheck. The deploy check the section gives runs in the web container's environment.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from backend.stack.commands import APP
from tests.chaos.services import missing_servers
from tests.fixtures.compose import ENV_EXAMPLE, REPO_DIR, ComposeProject
from tests.fixtures.compose_stack import Stack
from tests.fixtures.services import unavailable
from tests.fixtures.worker import report

pytestmark = pytest.mark.integration

README = REPO_DIR / "README.md"
NEW_ENV = REPO_DIR / "bin" / "new_env.py"
RECIPE = ["python3 bin/new_env.py", "docker compose up -d --build", "docker compose ps"]
# Containers that run on after `up`; worker-urgent has no healthcheck, migrate is a one-shot job.
LONG_RUNNING = ("web", "worker", "worker-urgent", "beat", "flower")
# Beat's heartbeat first runs a minute after beat starts; compose gives beat a 3-minute start period.
HEALTHY_WITHIN = 240


def production_section() -> str:
    text = README.read_text()
    return text[text.index("## Production shape") :].split("\n## ", 1)[0]


def recipe(section: str) -> list[str]:
    """The commands of the section's shell block, comments dropped."""
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.split("#", 1)[0].strip()]


def follow_the_env_steps(section: str, project_dir: Path) -> str:
    """``python3 bin/new_env.py`` in the checkout, then the first admin added, as the section says."""
    shutil.copy(ENV_EXAMPLE, project_dir / ".env.example")
    subprocess.run([sys.executable, str(NEW_ENV)], cwd=project_dir, check=True, capture_output=True, timeout=60)
    text = (project_dir / ".env").read_text()
    assert "DJANGO_SUPERUSER_*" in section
    text = re.sub(r"^# (DJANGO_SUPERUSER_\w+=)", r"\1", text, flags=re.MULTILINE)  # add them: uncommented
    (project_dir / ".env").write_text(text)
    return re.search(r"^DJANGO_SUPERUSER_PASSWORD=(.+)$", text, flags=re.MULTILINE)[1]


def test_the_production_section_followed_literally_starts_every_service(tmp_path: Path) -> None:
    section = production_section()
    assert recipe(section) == RECIPE, "the README's steps changed: follow them here too"
    admin_password = follow_the_env_steps(section, tmp_path)
    reason = missing_servers()  # the stand-ins for the postgres and redis containers
    if reason:
        unavailable(reason)
    project = ComposeProject(tmp_path)  # compose refuses a required variable without a value here
    stack = Stack(project, tmp_path / "stack")
    try:
        stack.start_services()

        (deploy_check,) = re.findall(r"`docker compose run --rm web (python backend/manage.py check [^`]+)`", section)
        checked = stack.run("web", [sys.executable, *shlex.split(deploy_check)[1:]])
        assert checked.returncode == 0, checked.stdout + checked.stderr

        migrated = stack.run("migrate")
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr

        for name in LONG_RUNNING:
            stack.start(name)
        with_healthcheck = [name for name in LONG_RUNNING if stack.container(name).healthcheck]
        assert set(with_healthcheck) == {"web", "worker", "beat", "flower"}
        became = stack.wait_healthy(with_healthcheck, HEALTHY_WITHIN)
        logs = "\n".join(f"--- {name}\n{stack.log(name)[-1500:]}" for name in became if became[name] is None)
        assert None not in became.values(), f"not healthy: {became}\n{logs}"
        report(f"README production section: every service healthy (seconds after start: {became})")
        urgent = stack.run("worker", ["celery", "-A", APP, "inspect", "ping", "-d", f"urgent@{stack.hostname}"])
        assert urgent.returncode == 0, urgent.stdout + urgent.stderr

        web = f"http://127.0.0.1:{stack.ports['web'][8000]}"
        proxied = {"Host": "localhost", "X-Forwarded-Proto": "https"}
        plain = httpx.get(f"{web}/admin/login/", headers={"Host": "localhost"}, timeout=10)
        assert plain.status_code == 301 and plain.headers["Location"] == "https://localhost/admin/login/"
        assert httpx.get(f"{web}/health/live", headers={"Host": "localhost"}, timeout=10).status_code == 200
        assert log_in_through_the_proxy(web, proxied, admin_password) == 200
    finally:
        stack.stop()


def log_in_through_the_proxy(web: str, proxied: dict[str, str], password: str) -> int:
    """Log in as the first admin the migrate job created, as a browser behind the TLS proxy does; the
    dashboard's status. Cookies are sent by hand: they are https-only, and this hop is the proxy's http."""
    login = httpx.get(f"{web}/admin/login/?next=/", headers=proxied, timeout=10)
    assert login.status_code == 200
    assert "secure" in login.headers["set-cookie"].lower()
    token = login.cookies["csrftoken"]
    form = {"username": "admin", "password": password, "csrfmiddlewaretoken": token, "next": "/"}
    browser = {**proxied, "Origin": "https://localhost", "Referer": "https://localhost/admin/login/"}
    posted = httpx.post(f"{web}/admin/login/?next=/", data=form, headers={**browser, "Cookie": f"csrftoken={token}"})
    assert posted.status_code == 302, posted.text[-2000:]
    session = posted.cookies["sessionid"]
    page = httpx.get(f"{web}/", headers={**proxied, "Cookie": f"sessionid={session}"}, timeout=30)
    assert "FinanceHub operations" in page.text
    return page.status_code
