"""Reading the fake provider server's request log from a benchmark."""

from __future__ import annotations

import time

from backend.fake_provider import FakeProviderServer


def settled_count(server: FakeProviderServer, provider: str) -> int:
    """Requests the server logged for ``provider``, once the log stops growing (it logs after replying)."""
    seen = len(server.requests(provider))
    while True:
        time.sleep(0.05)
        now = len(server.requests(provider))
        if now == seen:
            return now
        seen = now
