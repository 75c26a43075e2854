"""With debug off, weak secrets stop every entry point with one line naming them (never their values)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from backend.core.secret_checks import Secret, flower_secrets, secret_problems, url_secret, weakness

REPO_DIR = Path(__file__).resolve().parents[3]
STRONG = secrets.token_urlsafe(48)
OTHER = secrets.token_urlsafe(48)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("change-me", "is a placeholder"),
        ("CHANGE_ME-" + STRONG, "is a placeholder"),
        ("django-insecure-" + STRONG, "is a placeholder"),
        ("x" * 31, "is shorter than 32 characters"),
        ("ab" * 40, "has fewer than 10 different characters"),
        (STRONG, ""),
        (secrets.token_hex(16), ""),  # 32 hex characters: 128 bits
    ],
)
def test_a_token_needs_32_varied_characters_and_no_placeholder(value: str, reason: str) -> None:
    assert weakness(Secret("METRICS_TOKEN", value, 32)) == reason


def test_a_password_is_judged_for_placeholders_only() -> None:
    assert weakness(Secret("pw", "s3cret-pass")) == ""
    assert weakness(Secret("pw", "Password")) == "is a placeholder"
    assert weakness(Secret("pw", "")) == "is empty"


def test_one_value_in_two_secrets_is_refused_once_naming_both() -> None:
    found = secret_problems([Secret("DJANGO_SECRET_KEY", STRONG, 50), Secret("METRICS_TOKEN", STRONG, 32)])
    assert found == ["DJANGO_SECRET_KEY and METRICS_TOKEN hold the same value"]
    # One Redis password in several URLs of one server is one secret, not a reuse.
    redis = [
        Secret("REDIS_URL's password", OTHER, owner="redis"),
        Secret("CACHE_REDIS_URL's password", OTHER, owner="redis"),
    ]
    assert secret_problems(redis) == []


def test_service_url_and_flower_passwords_are_found() -> None:
    assert url_secret("REDIS_URL", "redis://127.0.0.1:6379/0", source="REDIS_PASSWORD") == []
    (empty,) = url_secret("REDIS_URL", "redis://:@redis:6379/0", source="REDIS_PASSWORD")
    assert weakness(empty) == "is empty"
    assert [s.name for s in flower_secrets("ops:a,viewer:b")] == [
        "FLOWER_BASIC_AUTH's password for ops",
        "FLOWER_BASIC_AUTH's password for viewer",
    ]


def start(**env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SECRET_KEY", "METRICS_TOKEN", "DJANGO_DEBUG"}}
    full = {**base, "DJANGO_SETTINGS_MODULE": "backend.core.settings", **env}
    return subprocess.run(
        [sys.executable, "backend/manage.py", "check"],
        cwd=REPO_DIR,
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DJANGO_SECRET_KEY": "change-me"}, "DJANGO_SECRET_KEY is a placeholder"),
        ({"DJANGO_SECRET_KEY": STRONG[:40]}, "DJANGO_SECRET_KEY is shorter than 50 characters"),
        ({"DJANGO_SECRET_KEY": ""}, "DJANGO_SECRET_KEY is empty"),
        ({"METRICS_TOKEN": "short-token"}, "METRICS_TOKEN is shorter than 32 characters"),
        ({"DJANGO_SECRET_KEY": STRONG, "METRICS_TOKEN": STRONG}, "DJANGO_SECRET_KEY and METRICS_TOKEN hold the same"),
        ({"FLOWER_BASIC_AUTH": "flower:change-me"}, "FLOWER_BASIC_AUTH's password for flower is a placeholder"),
        ({"FLOWER_BASIC_AUTH": f"flower:{OTHER}", "METRICS_TOKEN": OTHER}, "hold the same value"),
        ({"DJANGO_SUPERUSER_PASSWORD": "change-me"}, "DJANGO_SUPERUSER_PASSWORD is a placeholder"),
        ({"REDIS_URL": "redis://:change-me@127.0.0.1:6379/6"}, "REDIS_URL's password is a placeholder"),
        (
            {"REDIS_URL": "redis://:change-me@127.0.0.1:6379/6", "REDIS_PASSWORD": "change-me"},
            "REDIS_PASSWORD (in REDIS_URL) is a placeholder",
        ),
        ({"DATABASE_URL": "postgres://u:change-me@h/db"}, "DATABASE_URL's password is a placeholder"),
        # docker-compose.rabbitmq.yml builds the broker URL from RABBITMQ_PASSWORD.
        (
            {"CELERY_BROKER_URL": "amqp://fh:change-me@rabbitmq:5672/fh", "RABBITMQ_PASSWORD": "change-me"},
            "RABBITMQ_PASSWORD (in CELERY_BROKER_URL) is a placeholder",
        ),
        (
            {"CELERY_BROKER_URL": f"amqp://fh:{OTHER}@rabbitmq:5672/fh", "REDIS_URL": f"redis://:{OTHER}@h:6379/6"},
            "REDIS_URL's password and CELERY_BROKER_URL's password hold the same value",
        ),
    ],
)
def test_debug_off_refuses_a_weak_secret_naming_it(env: dict[str, str], named: str) -> None:
    result = start(**env)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("configuration error: weak secrets (DJANGO_DEBUG is off): ")
    assert named in line
    assert STRONG not in line and OTHER not in line


def test_debug_on_starts_with_placeholders() -> None:
    result = start(DJANGO_DEBUG="true", DJANGO_SECRET_KEY="change-me", METRICS_TOKEN="change-me")
    assert result.returncode == 0, result.stderr


def test_the_embedded_default_generates_secrets_that_pass(tmp_path: Path) -> None:
    result = start(FINANCEHUB_VAR_DIR=str(tmp_path))  # make run: no secret given, debug off
    assert result.returncode == 0, result.stderr
    assert len((tmp_path / "django_secret_key").read_text()) >= 50
    assert len((tmp_path / "metrics_token").read_text()) >= 32
