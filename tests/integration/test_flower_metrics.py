"""Flower's /metrics (open by Flower's design) demands the scrape token; the rest keeps basic auth."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from backend.stack.commands import celery_command
from tests.fixtures.worker import subprocess_env

pytestmark = pytest.mark.integration

REPO_DIR = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_flower_metrics_need_the_token_and_its_ui_keeps_basic_auth(tmp_path) -> None:
    port = free_port()
    log = (tmp_path / "flower.log").open("wb")
    command = celery_command(
        "flower", "--address=127.0.0.1", f"--port={port}", "--conf=backend/monitoring/flower_config.py"
    )
    env = subprocess_env({"FLOWER_BASIC_AUTH": "ops:s3cret-pass"})
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # as in production: Flower keeps its metrics in its own process
    flower = subprocess.Popen(command, cwd=REPO_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthcheck", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "flower.log").read_text()
            time.sleep(0.3)

        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic b3BzOnMzY3JldC1wYXNz"}):
            refused = httpx.get(f"{base}/metrics", headers=headers, timeout=5)
            assert refused.status_code == 401, headers
            # The challenge names the scheme that works here (never Flower's own Basic realm).
            assert refused.headers["WWW-Authenticate"] == 'Bearer realm="metrics"', headers
            assert "flower_" not in refused.text
        ok = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {settings.METRICS_TOKEN}"}, timeout=5)
        assert ok.status_code == 200 and "flower_" in ok.text
        assert httpx.get(f"{base}/", timeout=5).status_code == 401
        assert httpx.get(f"{base}/", auth=("ops", "s3cret-pass"), timeout=5).status_code == 200
    finally:
        flower.terminate()
        flower.wait(10)
        log.close()
