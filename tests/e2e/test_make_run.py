"""The README's first command on a fresh state directory: the system comes up and does its main job.

`make run` is started exactly as a user starts it, with the embedded defaults (no DATABASE_URL, no
REDIS_URL), in a new session so that Ctrl-C can be delivered to its whole process group the way a
terminal does.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from backend.stack.commands import APP
from tests.fixtures.worker import report

REPO_DIR = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def query(db: Path, sql: str) -> list[tuple]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []  # not migrated yet


def processes_with(marker: str) -> list[int]:
    """Pids of live processes whose environment carries ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def dashboard_with_live_data(web_port: int, var_dir: Path, started: float, timeout: float = 120) -> float | None:
    """Log in as the admin ``make run`` printed and poll ``/`` until the task chart has bars and both
    asset classes have a freshness row; the seconds since ``started``, or None if it never did."""
    user, password = (var_dir / "admin_credentials").read_text().strip().split(":", 1)
    with httpx.Client(base_url=f"http://127.0.0.1:{web_port}", timeout=5, follow_redirects=True) as client:
        login = client.get("/")  # sent to the admin login page, and back to / after it
        assert login.url.path == "/admin/login/", login.url
        form = {"username": user, "password": password, "csrfmiddlewaretoken": client.cookies["csrftoken"]}
        page = client.post("/admin/login/?next=/", data={**form, "next": "/"}, headers={"Referer": str(login.url)})
        while time.monotonic() < started + timeout:
            tasks_chart = page.text.partition('id="chart-tasks"')[2].partition("</section>")[0]
            if 'class="bar"' in tasks_chart and all(f'data-class="{c}"' in page.text for c in ("crypto", "stock")):
                return time.monotonic() - started
            time.sleep(2)
            page = client.get("/")
    return None


def test_make_run_serves_admin_flower_and_fresh_quotes_then_stops_cleanly(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    web_port, flower_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(FINANCEHUB_VAR_DIR=str(var_dir), WEB_PORT=str(web_port), FLOWER_PORT=str(flower_port))
    log_path = tmp_path / "make-run.log"
    started = time.monotonic()
    with log_path.open("wb") as log:
        make = subprocess.Popen(
            ["make", "run"], cwd=REPO_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    db = var_dir / "financehub.sqlite3"
    try:
        first_quote_after = None
        admin_ok = False
        deadline = started + 90
        while time.monotonic() < deadline and make.poll() is None:
            if not admin_ok:
                try:
                    admin_ok = httpx.get(f"http://127.0.0.1:{web_port}/admin/login/", timeout=2).status_code == 200
                except httpx.TransportError:
                    pass
            active = query(db, "SELECT COUNT(*) FROM market_asset WHERE is_active")
            quoted = query(
                db, "SELECT COUNT(*) FROM market_quote q JOIN market_asset a ON a.id = q.asset_id WHERE a.is_active"
            )
            if active and quoted and active[0][0] > 0 and quoted[0][0] == active[0][0]:
                first_quote_after = time.monotonic() - started
                if admin_ok:
                    break
            time.sleep(1)
        output = log_path.read_text(errors="replace")
        assert make.poll() is None, f"make run exited early:\n{output[-3000:]}"
        assert admin_ok, output[-3000:]
        assert first_quote_after is not None and first_quote_after < 60, output[-3000:]
        report(f"make run (embedded defaults): every active asset quoted {first_quote_after:.1f} s after start")

        # Each new asset's backfill queues its indicators: snapshots long before the hourly fan-out.
        snapshots_after = None
        while time.monotonic() < started + 120 and make.poll() is None:
            with_snapshot = query(
                db,
                "SELECT COUNT(DISTINCT s.asset_id) FROM market_indicatorsnapshot s"
                " JOIN market_asset a ON a.id = s.asset_id WHERE a.is_active",
            )
            if with_snapshot and with_snapshot[0][0] == active[0][0]:
                snapshots_after = time.monotonic() - started
                break
            time.sleep(1)
        assert snapshots_after is not None, log_path.read_text(errors="replace")[-3000:]
        report(f"make run (embedded defaults): every active asset has indicators {snapshots_after:.1f} s after start")

        # The operator dashboard shows that live data, for the admin the run printed.
        dashboard_after = dashboard_with_live_data(web_port, var_dir, started)
        assert dashboard_after is not None and dashboard_after < 60, output[-3000:]
        report(f"make run (embedded defaults): dashboard shows charts with data {dashboard_after:.1f} s after start")

        # gunicorn + WhiteNoise serve the admin's own CSS (collected by `make prepare`).
        css = httpx.get(f"http://127.0.0.1:{web_port}/static/admin/css/base.css", timeout=5)
        assert css.status_code == 200 and "text/css" in css.headers["content-type"], css.status_code

        names = {row[0] for row in query(db, "SELECT name FROM django_celery_beat_periodictask")}
        assert {"quotes: crypto", "quotes: stock"} <= names

        ping = subprocess.run(
            [str(REPO_DIR / ".venv/bin/celery"), "-A", APP, "inspect", "ping", "--timeout", "5"],
            cwd=REPO_DIR, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert "pong" in ping.stdout, ping.stdout + ping.stderr

        user, password = (var_dir / "flower_credentials").read_text().strip().split(":", 1)
        flower = f"http://127.0.0.1:{flower_port}/"
        assert httpx.get(flower, timeout=5).status_code == 401
        assert httpx.get(flower, auth=(user, password), timeout=5).status_code == 200
        assert password in output  # the credentials are printed for the operator

        # Both /metrics demand the scrape token (generated into var/ by the first process to need it).
        token = (var_dir / "metrics_token").read_text().strip()
        bearer = {"Authorization": f"Bearer {token}"}
        for url in (f"http://127.0.0.1:{web_port}/metrics", f"http://127.0.0.1:{flower_port}/metrics"):
            assert httpx.get(url, timeout=10).status_code == 401, url
            assert httpx.get(url, headers=bearer, timeout=10).status_code == 200, url
        scrape = httpx.get(f"http://127.0.0.1:{web_port}/metrics", headers=bearer, timeout=10).text
        assert "financehub_celery_tasks_succeeded_total" in scrape  # the workers' own counters
        assert token not in output  # printed: where the token is, never the token
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGINT)
        try:
            make.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait(5)
    time.sleep(1)
    leftovers = processes_with(f"FINANCEHUB_VAR_DIR={var_dir}")
    assert leftovers == [], f"processes left behind after Ctrl-C: {leftovers}"
