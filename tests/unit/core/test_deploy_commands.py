"""The migrate job's first admin, and static files served by WhiteNoise after collectstatic."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client


@pytest.fixture
def superuser_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "ops")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-enough-password")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "ops@example.com")
    return monkeypatch


@pytest.mark.django_db
def test_it_creates_the_first_admin_from_the_environment(superuser_env) -> None:
    call_command("ensure_superuser")
    user = get_user_model().objects.get(username="ops")
    assert user.is_superuser and user.is_staff
    assert user.email == "ops@example.com"
    assert user.check_password("a-long-enough-password")


@pytest.mark.django_db
def test_it_is_idempotent_and_never_resets_an_existing_admin(superuser_env) -> None:
    call_command("ensure_superuser")
    user = get_user_model().objects.get(username="ops")
    user.set_password("changed-in-admin-later")
    user.save()
    call_command("ensure_superuser")  # the next deploy runs the migrate job again
    assert get_user_model().objects.filter(username="ops").count() == 1
    assert get_user_model().objects.get(username="ops").check_password("changed-in-admin-later")


@pytest.mark.django_db
def test_once_the_admin_exists_its_password_may_leave_the_environment(superuser_env) -> None:
    call_command("ensure_superuser")
    superuser_env.delenv("DJANGO_SUPERUSER_PASSWORD")
    call_command("ensure_superuser")  # no error: nothing to create
    assert get_user_model().objects.get(username="ops").check_password("a-long-enough-password")


@pytest.mark.django_db
def test_it_does_nothing_without_a_username(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DJANGO_SUPERUSER_USERNAME", raising=False)
    call_command("ensure_superuser")
    assert not get_user_model().objects.exists()


@pytest.mark.django_db
def test_it_refuses_a_username_without_a_password(superuser_env) -> None:
    superuser_env.delenv("DJANGO_SUPERUSER_PASSWORD")
    with pytest.raises(CommandError, match="DJANGO_SUPERUSER_PASSWORD"):
        call_command("ensure_superuser")
    assert not get_user_model().objects.exists()


@pytest.mark.django_db
def test_whitenoise_serves_the_admin_css_after_collectstatic(settings, tmp_path: Path) -> None:
    settings.STATIC_ROOT = tmp_path / "static"
    call_command("collectstatic", interactive=False, verbosity=0)
    assert (tmp_path / "static" / "admin" / "css" / "base.css.gz").exists()  # compressed copies too

    # A new client builds the middleware chain, so WhiteNoise scans the STATIC_ROOT set above.
    response = Client().get("/static/admin/css/base.css", HTTP_ACCEPT_ENCODING="gzip")
    body = b"".join(response.streaming_content)
    response.close()
    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    assert body == (tmp_path / "static" / "admin" / "css" / "base.css.gz").read_bytes()
