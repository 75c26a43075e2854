"""Every command line the README and docs/*.md give an operator works as written.

A command line is a line of a code block (fenced or indented) or an inline code span that starts
with ``bin/manage``, ``.venv/bin/python -m backend.`` or ``make``. How each kind is checked:

* ``bin/manage ...``: run for real, in document order, through the wrapper, as a subprocess against
  this test's database (committed data) with a private var/ directory, so the embedded filesystem
  broker (a replay's task goes there, where no worker of the session takes it) and cache table. The
  data the examples name exists: the demo universe, dead letters 42 (Yahoo), 43 (CoinGecko) and 44 (arguments cut), and
  ``universe.json`` in the working directory. Each must exit 0 (its output is in the failure message).
* ``.venv/bin/python -m backend.fake_provider ...``: a server, so started as written (on a free port
  instead of the documented one, which may be taken) and stopped once it answers HTTP.
* ``make TARGET``: only checked to exist (``make -n``): ``make run`` runs for real in
  tests/e2e/test_make_run.py, ``make test`` is the suite itself (CI runs it as a newcomer does) and
  ``make chaos`` takes twelve minutes.
* Not run: ``docker compose ...`` (no Docker here), the Procfile's process commands (``celery``,
  ``gunicorn``: ``make run`` starts them) and docs/BENCHMARKS.md (benchmarks of minutes each, run
  with ``.venv/bin/python -m bench...`` once ``.venv`` exists).

And no document tells anyone to run ``python backend/manage.py`` (``ModuleNotFoundError: django``
without an active virtualenv), except inside the image (``docker compose run ... python backend/manage.py``).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from django.core.management import call_command

from backend.deadletters.models import DeadLetter
from tests.fixtures.deadletters import make_dead_letter
from tests.fixtures.worker import _test_database_url

REPO_DIR = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration  # subprocesses against the test database: tens of seconds
DOCS = [REPO_DIR / "README.md", *sorted((REPO_DIR / "docs").glob("*.md"))]
PREFIXES = ("bin/manage ", ".venv/bin/python -m backend.", "make ")
FENCE = re.compile(r"^\s*```")
SPAN = re.compile(r"`([^`\n]+)`")
# A documented command may not take longer than this (backfills of a few assets, a replay).
COMMAND_TIMEOUT = 120


def command_lines(path: Path) -> list[str]:
    """The command lines of one document, in order (code blocks and inline spans, see above)."""
    found: list[str] = []
    in_fence = False
    text = path.read_text()
    # Inline spans may wrap across two lines of prose: join each paragraph first.
    for block in re.split(r"\n\s*\n", text):
        lines = block.splitlines()
        if any(FENCE.match(line) for line in lines) or in_fence:
            for line in lines:
                if FENCE.match(line):
                    in_fence = not in_fence
                elif in_fence:
                    found.append(line.strip())
            continue
        if lines and all(line.startswith(("    ", "\t")) for line in lines):
            found.extend(line.strip() for line in lines)  # an indented code block
            continue
        found.extend(span.strip() for span in SPAN.findall(" ".join(line.strip() for line in lines)))
    return [line for line in found if line.startswith(PREFIXES)]


def documented_commands() -> list[tuple[str, str]]:
    """(document, command line) for every document, in reading order."""
    return [(path.name, line) for path in DOCS for line in command_lines(path)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_docs_give_commands_and_every_manage_command_uses_the_wrapper() -> None:
    commands = [line for _, line in documented_commands()]
    assert sum(line.startswith("bin/manage ") for line in commands) >= 25  # the extraction found them
    stale = [
        f"{path.name}:{number}: {line.strip()}"
        for path in DOCS
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"(python )?backend/manage\.py", line) and "docker compose" not in line
    ]
    assert stale == []


@pytest.mark.django_db(transaction=True)
def test_every_documented_manage_command_runs_as_written(tmp_path: Path) -> None:
    call_command("load_demo_assets")
    for pk, task_id, provider, symbols in (
        (42, "doc-42", "yahoo", ["AAPL", "MSFT"]),
        (43, "doc-43", "coingecko", ["BTC"]),
    ):
        row = make_dead_letter(task_id, providers=[provider], symbols=symbols, args=["x", symbols])
        DeadLetter.objects.filter(pk=row.pk).update(id=pk)
    # 44: a row whose arguments were cut (the runbook's confirmed replay of one).
    cut = make_dead_letter("doc-44", providers=["yahoo"], symbols=["AAPL"], args=["x", ["AAPL"]])
    DeadLetter.objects.filter(pk=cut.pk).update(id=44, arguments_truncated=True, arguments_size=100_014)
    (tmp_path / "universe.json").write_text(
        json.dumps(
            {"asset_types": [{"code": "stock", "name": "Stock"}], "assets": [{"symbol": "IBM", "type": "stock"}]}
        )
    )
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"REDIS_URL", "CELERY_BROKER_URL", "PROVIDER_STATE_REDIS_URL", "MARKET_DATA_MODE"}
    }
    env.update(DATABASE_URL=_test_database_url(), FINANCEHUB_VAR_DIR=str(tmp_path / "var"))
    # The embedded cache lives in a table that `make run` creates (prepare_stack); so does this setup step.
    subprocess.run([REPO_DIR / "bin" / "manage", "createcachetable"], env=env, check=True, timeout=COMMAND_TIMEOUT)

    ran = []
    for document, line in documented_commands():
        if not line.startswith("bin/manage "):
            continue
        argv = [str(REPO_DIR / "bin" / "manage"), *shlex.split(line, comments=True)[1:]]
        result = subprocess.run(
            argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
        )
        assert result.returncode == 0, f"{document}: {line}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        ran.append(line)
    assert any("deadletters replay --all-matching" in line and "--dry-run" not in line for line in ran)
    assert DeadLetter.objects.get(pk=42).state == DeadLetter.State.REPLAYED  # the real replay did its job
    assert DeadLetter.objects.get(pk=43).state == DeadLetter.State.DISCARDED


def test_the_documented_fake_provider_server_starts_and_answers(tmp_path: Path) -> None:
    (line,) = {line for _, line in documented_commands() if line.startswith(".venv/bin/python -m backend.")}
    argv = shlex.split(line, comments=True)
    assert argv[:3] == [".venv/bin/python", "-m", "backend.fake_provider"] and "--port" in argv
    port = free_port()
    argv[argv.index("--port") + 1] = str(port)
    log = tmp_path / "fake-provider.log"
    with log.open("wb") as output:
        server = subprocess.Popen(argv, cwd=REPO_DIR, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        answered = None
        while time.monotonic() < deadline and server.poll() is None and answered is None:
            try:
                answered = httpx.get(f"http://127.0.0.1:{port}/binance/api/v3/ping", timeout=2).status_code
            except httpx.TransportError:
                time.sleep(0.25)
        assert answered == 200, log.read_text(errors="replace")[-2000:]
    finally:
        server.terminate()
        server.wait(10)


def test_every_documented_make_target_exists() -> None:
    targets = {shlex.split(line)[1] for _, line in documented_commands() if line.startswith("make ")}
    assert {"run", "test", "chaos", "check"} <= targets
    for target in sorted(targets):
        result = subprocess.run(["make", "-n", target], cwd=REPO_DIR, capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"make {target}: {result.stderr}"
