"""http on 127.0.0.1 (make run) and https behind a TLS-terminating proxy (docker compose), as each process
loads them: settings are read from the environment at import, so each case runs in its own interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_DIR = Path(__file__).resolve().parents[3]
# Requests made inside the child with Django's test client (no server, no database needed for these).
PROBE = """
import json, django
django.setup()
from django.test import Client
from django.conf import settings
client = Client(HTTP_HOST="localhost")
answers = {}
for name, path, headers in [
    ("login", "/admin/login/", {}),
    ("login_via_proxy", "/admin/login/", {"HTTP_X_FORWARDED_PROTO": "https"}),
    ("live", "/health/live", {}),
    ("metrics", "/metrics", {}),
]:
    response = client.get(path, **headers)
    cookie = response.cookies.get("csrftoken")
    answers[name] = {
        "status": response.status_code,
        "location": response.get("Location", ""),
        "hsts": response.get("Strict-Transport-Security", ""),
        "csrf_cookie_secure": bool(cookie and cookie["secure"]),
    }
print(json.dumps(answers))
"""


def probe(tmp_path: Path, **env: str) -> dict[str, dict]:
    """The answers of a process started with ``env`` on top of make run's (no services, var/ of its own)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL"))}
    full = {**base, "DJANGO_SETTINGS_MODULE": "backend.core.settings", "FINANCEHUB_VAR_DIR": str(tmp_path), **env}
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO_DIR, env=full, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_make_runs_plain_http_serves_the_admin_login_with_cookies_http_can_carry(tmp_path: Path) -> None:
    answers = probe(tmp_path)
    assert answers["login"]["status"] == 200
    # A Secure cookie would never come back over http: the login form's CSRF check would always fail.
    assert answers["login"]["csrf_cookie_secure"] is False
    assert answers["login"]["hsts"] == ""


def test_behind_the_tls_proxy_http_is_redirected_and_cookies_are_https_only(tmp_path: Path) -> None:
    answers = probe(tmp_path, DJANGO_BEHIND_TLS_PROXY="true")
    assert answers["login"]["status"] == 301
    assert answers["login"]["location"] == "https://localhost/admin/login/"
    assert answers["login_via_proxy"]["status"] == 200  # the proxy said https
    assert answers["login_via_proxy"]["csrf_cookie_secure"] is True
    assert answers["login_via_proxy"]["hsts"] == ""  # off until asked
    # In-cluster probes and Prometheus ask the container over http, never redirected.
    assert answers["live"]["status"] == 200
    assert answers["metrics"]["status"] == 401  # its own token check, not a redirect


def test_hsts_is_sent_on_https_answers_once_asked_for(tmp_path: Path) -> None:
    answers = probe(tmp_path, DJANGO_BEHIND_TLS_PROXY="true", DJANGO_HSTS_SECONDS="3600")
    assert answers["login_via_proxy"]["hsts"] == "max-age=3600"
    assert answers["live"]["hsts"] == ""  # never on plain http


@pytest.mark.parametrize(
    ("env", "clean"),
    [
        ({"DJANGO_BEHIND_TLS_PROXY": "true"}, True),
        ({"DJANGO_BEHIND_TLS_PROXY": "true", "DJANGO_HSTS_SECONDS": "31536000",
          "DJANGO_HSTS_INCLUDE_SUBDOMAINS": "true", "DJANGO_HSTS_PRELOAD": "true"}, True),
        ({}, False),  # make run: plain http, which the deploy check rightly warns about
    ],
)  # fmt: skip
def test_the_deploy_check_is_clean_behind_the_tls_proxy(tmp_path: Path, env: dict[str, str], clean: bool) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    full = {**base, "DJANGO_SETTINGS_MODULE": "backend.core.settings", "FINANCEHUB_VAR_DIR": str(tmp_path), **env}
    result = subprocess.run(
        [sys.executable, "backend/manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO_DIR, env=full, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (result.returncode == 0) is clean, result.stdout + result.stderr
    if clean and "DJANGO_HSTS_SECONDS" not in env:
        assert "financehub.I001" in result.stdout + result.stderr  # HSTS off is said, as a note
