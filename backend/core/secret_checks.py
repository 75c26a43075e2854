"""Weak secrets stop start-up when debug is off: placeholders, empty or short values, one value used twice.

``check_secrets`` is called by ``setting_checks.check_settings`` with the settings' values. Every
problem found goes into one line naming the settings (never their values), so an operator who copied
``.env.example`` learns of every ``change-me`` at once, not one per restart.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from .environment import redis_location

# Django's own deploy check (security.W009) wants a secret key of at least 50 characters.
SECRET_KEY_MIN_LENGTH = 50
TOKEN_MIN_LENGTH = 32
# A random value of 32+ characters has far more; "aaaa..." or "abcabc..." has fewer.
MIN_DISTINCT_CHARACTERS = 10
# Compared with the value lower-cased and stripped of everything but letters and digits.
PLACEHOLDER_WORDS = ("changeme", "replaceme", "placeholder", "insecure", "example", "collectstaticonly")
PLACEHOLDER_VALUES = frozenset(
    {"password", "secret", "admin", "root", "test", "default", "postgres", "redis", "flower"}
)
REDIS_URL_SETTINGS = ("REDIS_URL", "CELERY_BROKER_URL", "PROVIDER_STATE_REDIS_URL", "CACHE_REDIS_URL")
GENERATE_HINT = (
    'generate each with: python -c "import secrets; print(secrets.token_urlsafe(48))"'
    " (python3 bin/new_env.py writes a whole .env so from .env.example)"
)


@dataclass(frozen=True)
class Secret:
    """One secret as start-up judges it.

    ``name`` is how the refusal names it; ``min_length`` is 0 for a password (judged for placeholders
    and reuse only); ``owner`` groups the copies of one secret (a Redis password in several URLs of
    one server is one secret, not a reuse).
    """

    name: str
    value: str
    min_length: int = 0
    owner: str = ""


def weakness(secret: Secret) -> str:
    """Why ``secret`` is too weak to run with, or ``""``."""
    value = secret.value.strip()
    if not value:
        return "is empty"
    letters = re.sub(r"[^a-z0-9]", "", value.lower())
    if letters in PLACEHOLDER_VALUES or any(word in letters for word in PLACEHOLDER_WORDS):
        return "is a placeholder"
    if secret.min_length and len(value) < secret.min_length:
        return f"is shorter than {secret.min_length} characters"
    if secret.min_length and len(set(value)) < MIN_DISTINCT_CHARACTERS:
        return f"has fewer than {MIN_DISTINCT_CHARACTERS} different characters"
    return ""


def secret_problems(secrets: Sequence[Secret]) -> list[str]:
    """Every weak secret, then every value held by two different secrets ("A and B hold one value")."""
    problems = []
    holders: dict[str, list[Secret]] = defaultdict(list)
    for secret in secrets:
        reason = weakness(secret)
        if reason:
            problems.append(f"{secret.name} {reason}")
        else:
            holders[secret.value.strip()].append(secret)
    for group in holders.values():
        if len({s.owner or s.name for s in group}) > 1:
            problems.append(" and ".join(dict.fromkeys(s.name for s in group)) + " hold the same value")
    return problems


def url_secret(name: str, url: str, *, source: str, owner: str = "") -> list[Secret]:
    """The password of a service URL as a secret, when the URL has one (``user:@host`` has an empty one).

    docker compose builds the URL from ``source`` (POSTGRES_PASSWORD, REDIS_PASSWORD): when that
    variable holds the password, the refusal names it, the line of .env to change.
    """
    try:
        password = urlsplit(url).password
    except ValueError:
        return []  # unparseable: the URL's own check names it
    if password is None:
        return []
    label = f"{source} (in {name})" if os.environ.get(source) == password else f"{name}'s password"
    return [Secret(label, password, owner=owner)]


def redis_secrets(values: Mapping[str, Any]) -> list[Secret]:
    """The Redis passwords of the settings' Redis URLs, each value once (the cache's URL is REDIS_URL's copy)."""
    found: dict[str, Secret] = {}
    for name in REDIS_URL_SETTINGS:
        url = values.get(name) or ""
        if redis_location(url) is None:
            continue  # a RabbitMQ broker URL: rabbitmq_secrets
        for secret in url_secret(name, url, source="REDIS_PASSWORD", owner="redis"):
            found.setdefault(secret.value, secret)
    return list(found.values())


def rabbitmq_secrets(values: Mapping[str, Any]) -> list[Secret]:
    """The password of a RabbitMQ broker URL (docker-compose.rabbitmq.yml builds it from RABBITMQ_PASSWORD)."""
    url = values.get("CELERY_BROKER_URL") or ""
    if not url.split("://", 1)[0].startswith(("amqp", "pyamqp")):
        return []
    return url_secret("CELERY_BROKER_URL", url, source="RABBITMQ_PASSWORD", owner="rabbitmq")


def flower_secrets(basic_auth: str) -> list[Secret]:
    """Each ``user:password`` of FLOWER_BASIC_AUTH (comma-separated) as a secret."""
    found = []
    for entry in filter(None, (item.strip() for item in basic_auth.split(","))):
        user, _, password = entry.partition(":")
        found.append(Secret(f"FLOWER_BASIC_AUTH's password for {user}", password, owner=f"flower:{user}"))
    return found


def set_but_empty(names: Iterable[str]) -> list[Secret]:
    """Variables given as empty: the settings then fall back to a generated value, which a container
    without var/ regenerates at every start (sessions and scrapes break); say so instead."""
    return [Secret(name, "") for name in names if name in os.environ and not os.environ[name].strip()]


def deployment_secrets(values: Mapping[str, Any]) -> list[Secret]:
    """The secrets this deployment runs with, read from the settings and the first admin's variable."""
    secrets = [
        *set_but_empty(("DJANGO_SECRET_KEY", "METRICS_TOKEN")),
        Secret("DJANGO_SECRET_KEY", values["SECRET_KEY"], SECRET_KEY_MIN_LENGTH),
        Secret("METRICS_TOKEN", values["METRICS_TOKEN"], TOKEN_MIN_LENGTH),
        *url_secret("DATABASE_URL", values["DATABASE_URL"], source="POSTGRES_PASSWORD"),
        *redis_secrets(values),
        *rabbitmq_secrets(values),
        *flower_secrets(values.get("FLOWER_BASIC_AUTH") or ""),
    ]
    admin_password = os.environ.get("DJANGO_SUPERUSER_PASSWORD", "").strip()
    if admin_password:  # only the migrate job reads it; judged only when given
        secrets.append(Secret("DJANGO_SUPERUSER_PASSWORD", admin_password))
    return secrets


def check_secrets(values: Mapping[str, Any]) -> None:
    """Refuse to start with debug off while any secret is a placeholder, empty, short, or reused."""
    if values["DEBUG"]:
        return  # a developer's machine; DJANGO_DEBUG is refused nowhere else either
    problems = secret_problems(deployment_secrets(values))
    if problems:
        raise ImproperlyConfigured(f"weak secrets (DJANGO_DEBUG is off): {'; '.join(problems)}; {GENERATE_HINT}")
