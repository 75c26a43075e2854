"""Container healthcheck of the web process: GET /health/live from inside its own container.

``python -m backend.monitoring.probe [URL]`` exits 0 on a 2xx answer and 1 otherwise. The image has
no curl, and Django answers 400 to a Host it does not allow, so the probe sends the first host name
of ``DJANGO_ALLOWED_HOSTS`` rather than the address it connects to.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import httpx

DEFAULT_URL = "http://127.0.0.1:8000/health/live"


def host_header(allowed_hosts: Sequence[str]) -> str:
    """A Host value that Django's ALLOWED_HOSTS accepts: the first concrete name, or localhost."""
    for pattern in allowed_hosts:
        name = pattern.strip().lstrip(".")
        if name and name != "*":
            return name
    return "localhost"


def probe(url: str, host: str, *, timeout: float = 5.0) -> bool:
    """Whether ``url`` answers 2xx when asked for ``host``."""
    try:
        response = httpx.get(url, headers={"Host": host}, timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.is_success


def main(argv: Sequence[str]) -> int:
    """Probe the URL given (default: this container's gunicorn); the exit status is the verdict."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.core.settings")
    from django.conf import settings  # read at use time: the probe's own import stays light

    url = argv[0] if argv else DEFAULT_URL
    ok = probe(url, host_header(settings.ALLOWED_HOSTS))
    sys.stdout.write(f"{url}: {'ok' if ok else 'failed'}\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
