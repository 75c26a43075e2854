"""Reading settings from the environment: typed readers that name the variable when its value is junk.

Plain functions used by the ``backend/core/settings`` package; nothing here reads a variable at import.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str = "") -> str:
    """Return the variable's value, or the default when unset or empty."""
    return os.environ.get(name, "").strip() or default


def env_int(name: str, default: int) -> int:
    """Return the variable as an int, refusing junk with the setting's name."""
    raw = env_str(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: expected an integer, got {raw!r}") from None


def env_float(name: str, default: float) -> float:
    """Return the variable as a float, refusing junk with the setting's name."""
    raw = env_str(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: expected a number, got {raw!r}") from None


def env_bool(name: str, default: bool) -> bool:
    """Return the variable as a bool (1/0, true/false, yes/no, on/off)."""
    raw = env_str(name).lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}: expected a boolean, got {raw!r}")


def env_list(name: str, default: str = "") -> list[str]:
    """Return a comma-separated variable as a list of non-empty items."""
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def persistent_secret(var_dir: Path, filename: str) -> str:
    """Return a random secret kept under ``var_dir``, creating it on first use."""
    path = var_dir / filename
    if not path.exists():
        write_secret_file(path, secrets.token_urlsafe(48))
    return path.read_text().strip()


def write_secret_file(path: Path, text: str) -> bool:
    """Create ``path`` holding ``text``, readable by its owner only from its first byte; False when it exists.

    The file is created 0600 (write then chmod would leave it world-readable for a moment) under a
    temporary name and linked into place once written, so a process starting at the same time (web and
    worker on a fresh checkout) reads either nothing or the whole secret, and both end up with one value.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(descriptor, text.encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    try:
        os.link(temporary, path)  # fails if another process got there first: its secret stands
    except FileExistsError:
        return False
    finally:
        temporary.unlink()
    return True


def parse_database_url(url: str) -> dict:
    """Parse DATABASE_URL into Django's form, naming the setting when it cannot."""
    try:
        config = dj_database_url.parse(url, conn_max_age=60)
    except (ValueError, KeyError) as exc:
        raise ImproperlyConfigured(f"DATABASE_URL: cannot parse the URL ({type(exc).__name__})") from None
    if not config.get("NAME"):
        raise ImproperlyConfigured("DATABASE_URL: the URL names no database")
    return config


# Redis ships with databases 0-15; a derived cache database past the last one would not exist.
REDIS_DEFAULT_DATABASES = 16


def redis_location(url: str) -> tuple[str, str, int] | None:
    """Where a Redis URL's keys live: (server, port or socket path, database); None for other schemes.

    Two URLs with the same location share one keyspace, whatever their passwords or options.
    """
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss", "unix"}:
        return None
    query = parse_qs(parts.query)
    if parts.scheme == "unix":
        server, where, path_db = "unix", parts.path, ""
    else:
        try:
            port = parts.port or 6379
        except ValueError:
            return None  # junk port: check_broker_url names the setting
        server, where, path_db = (parts.hostname or "localhost").lower(), str(port), parts.path.strip("/")
    raw_db = (query.get("db") or [path_db or "0"])[0]
    try:
        return server, where, int(raw_db)
    except ValueError:
        return server, where, -1  # not a number: redis-py refuses it when it connects


def next_redis_database(name: str, url: str) -> str:
    """``url`` with the database after its own (``/0`` -> ``/1``), refused past Redis's default sixteen."""
    location = redis_location(check_broker_url(name, url))
    if location is None:
        raise ImproperlyConfigured(f"{name}: cannot derive a cache database from a {urlsplit(url).scheme} URL")
    database = location[2] + 1
    if not 0 < database < REDIS_DEFAULT_DATABASES:
        raise ImproperlyConfigured(
            f"{name} uses Redis database {location[2]}; the cache takes the next one, which Redis does not have "
            "by default: set CACHE_REDIS_URL to a database of its own"
        )
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if "db" in query:
        query["db"] = [str(database)]
        return urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
    return urlunsplit(parts._replace(path=f"/{database}"))


def check_broker_url(name: str, url: str) -> str:
    """Refuse a broker URL that does not parse, naming the setting (never echoing a password)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a junk port
    except ValueError:
        raise ImproperlyConfigured(f"{name}: cannot parse the URL") from None
    if parts.scheme not in {"redis", "rediss", "amqp", "amqps", "pyamqp", "filesystem", "memory"}:
        raise ImproperlyConfigured(f"{name}: unsupported scheme {parts.scheme!r}")
    return url
