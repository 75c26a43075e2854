"""The scrape token check, shared by /metrics and Flower's /metrics (no Django needed)."""

from __future__ import annotations

import hmac


def bearer_token_ok(authorization: str, expected: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <expected>``; never true for an empty token."""
    scheme, _, presented = authorization.partition(" ")
    if not expected or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), expected.encode())
