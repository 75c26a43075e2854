"""Fakes for provider tests: a recording MockTransport router, fixtures on disk, a fixed clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from backend.providers.http import build_client

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
# Later than every invented timestamp in the fixtures, so none of them counts as "in the future".
FIXED_NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SECRET = "sk-TEST-5EcR3t-KEY"

Handler = Callable[[httpx.Request], httpx.Response]


def fixture_text(vendor: str, name: str) -> str:
    """The raw text of ``tests/fixtures/<vendor>/<name>``."""
    return (FIXTURES / vendor / name).read_text(encoding="utf-8")


def fixture_json(vendor: str, name: str) -> Any:
    """The parsed JSON of ``tests/fixtures/<vendor>/<name>``."""
    return json.loads(fixture_text(vendor, name))


def json_response(vendor: str, name: str, status: int = 200, **headers: str) -> httpx.Response:
    """A response whose body is a fixture file, served as JSON."""
    return httpx.Response(
        status,
        content=fixture_text(vendor, name).encode(),
        headers={"content-type": "application/json", **headers},
    )


class FakeApi:
    """Routes requests by path (one handler function per fake endpoint) and records every request."""

    def __init__(self, host: str = "api.test", prefix: str = "") -> None:
        self.base_url = f"https://{host}{prefix}"
        self.prefix = prefix
        self.routes: dict[str, Handler] = {}
        self.requests: list[httpx.Request] = []

    def route(self, path: str, handler: Handler) -> None:
        """Serve ``handler`` for ``prefix + path``."""
        self.routes[self.prefix + path] = handler

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        handler = self.routes.get(request.url.path)
        if handler is None:
            return httpx.Response(404, json={"error": "no such fake route"})
        return handler(request)

    def client(self) -> httpx.Client:
        """An httpx client from the production factory with this fake as its transport."""
        return build_client(transport=httpx.MockTransport(self))

    def paths(self) -> list[str]:
        """The paths requested so far, in order."""
        return [r.url.path for r in self.requests]
