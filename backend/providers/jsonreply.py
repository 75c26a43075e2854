"""Reading a provider's JSON body: numbers as ``Decimal``, a cut-off body told apart from a wrong one.

* A bare ``NaN``/``Infinity``/``-Infinity`` (not JSON, but some APIs send it) parses as a non-finite
  ``Decimal``; the record that carries it is refused by the record checks (``validation.to_decimal``)
  and the other records of the reply are kept.
* A body that ends mid-document (a connection reset, a proxy timeout, an empty 200) raises
  ``TruncatedReplyError``: a transport fault, transient, worth a retry or the next provider.
* A body that is complete but not JSON (junk, an HTML page) raises ``MalformedReplyError``: permanent.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from backend.providers.errors import MalformedReplyError, TruncatedReplyError

_CLOSERS = {"{": "}", "[": "]", '"': '"'}


def parse_json_body(body: bytes | str, *, provider: str, url: str) -> Any:
    """Parse a provider body (floats as ``Decimal``); raise Truncated- or MalformedReplyError."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data":  # a multi-byte character cut at the very end
            raise _truncated(provider, url, "ends inside a UTF-8 character") from None
        raise MalformedReplyError(f"{provider}: body from {url} is not UTF-8", provider=provider) from None
    if not text.strip():
        raise _truncated(provider, url, "is empty")
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=Decimal)
    except json.JSONDecodeError as exc:
        if is_cut_off(text, exc):
            raise _truncated(provider, url, f"ends mid-document at character {exc.pos}") from None
        raise MalformedReplyError(
            f"{provider}: body from {url} is not JSON ({_one_line(exc.msg)} at character {exc.pos})",
            provider=provider,
        ) from None


def is_cut_off(text: str, exc: json.JSONDecodeError) -> bool:
    """Whether the decode error is the parser running out of input rather than meeting junk."""
    stripped = text.rstrip()
    if exc.msg.startswith("Extra data"):  # a whole document, then junk: nothing was cut
        return False
    if exc.pos >= len(stripped) or exc.msg.startswith("Unterminated string"):
        return True
    opened = stripped.lstrip()[:1]
    # A document that opened an object or array and does not end with its closer was cut, e.g. mid-literal.
    return opened in _CLOSERS and not stripped.endswith(_CLOSERS[opened])


def _truncated(provider: str, url: str, how: str) -> TruncatedReplyError:
    return TruncatedReplyError(f"{provider}: body from {url} {how} (truncated reply)", provider=provider)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:80]
