"""Plumbing every fake API shares: replies, the parsed request, query helpers, where keys travel."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.parse import unquote_plus

PROVIDERS = ("yahoo", "binance", "coingecko", "alphavantage", "coinmarketcap", "newsapi")


UNKNOWN_PREFIXES = ("UNKNOWN", "ZZZ")


CMC_UNKNOWN_ID_FLOOR = 900_000_000


# Query params whose values never reach the request log.
_SECRET_PARAMS = frozenset({"apikey", "api_key", "x_cg_demo_api_key", "x_cg_pro_api_key", "cmc_pro_api_key", "crumb"})


KEYED_PROVIDERS = ("coingecko", "alphavantage", "coinmarketcap", "newsapi")


class BadParam(ValueError):
    """A malformed query parameter; each provider turns it into its own 400 shape."""


def int_param(params: dict[str, list[str]], name: str, default: int | None = None) -> int | None:
    """An integer query parameter, ``default`` when absent; ``BadParam`` when it is not a number."""
    raw = query_param(params, name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise BadParam(name) from exc


def query_param(params: dict[str, list[str]], name: str) -> str | None:
    """The first value of a query parameter, or None."""
    values = params.get(name)
    return values[0] if values else None


def comma_list(raw: str | None) -> list[str]:
    """A comma-separated parameter as a list of unique, stripped, non-empty items (order kept)."""
    if not raw:
        return []
    return list(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))


def truthy(raw: str | None) -> bool:
    """Whether a flag parameter says "true" (any case)."""
    return (raw or "").lower() == "true"


@dataclass(slots=True)
class Reply:
    """One HTTP answer the server will write: status, body, content type and extra headers."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_reply(status: int, obj: Any, headers: Sequence[tuple[str, str]] = ()) -> Reply:
    """A compact JSON reply."""
    return Reply(status, json.dumps(obj, separators=(",", ":")).encode(), "application/json", list(headers))


def text_reply(status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> Reply:
    """A plain-text (or HTML) reply."""
    return Reply(status, text.encode(), content_type)


def mask_query(query: str) -> str:
    """The raw query string with secret values replaced, everything else byte-for-byte."""
    if not query:
        return ""
    parts = query.split("&")
    for i, part in enumerate(parts):
        name, sep, _ = part.partition("=")
        if sep and unquote_plus(name).lower() in _SECRET_PARAMS:
            parts[i] = f"{name}=***"
    return "&".join(parts)


def cookies(headers: Message) -> dict[str, str]:
    """The cookies a request sent, name -> value."""
    jar: dict[str, str] = {}
    for header in headers.get_all("Cookie") or ():
        for item in header.split(";"):
            name, sep, value = item.strip().partition("=")
            if sep:
                jar[name] = value
    return jar


Clock = Callable[[], float]


def key_location(provider: str, params: dict[str, list[str]], headers: Message) -> str | None:
    """Where the request carried its API key: "header", "query" or None."""
    names = _KEY_LOCATIONS.get(provider)
    if names is None:
        return None
    header_names, query_names = names
    if any(headers.get(h) for h in header_names):
        return "header"
    if any(query_param(params, q) for q in query_names):
        return "query"
    return None


def sent_key(provider: str, params: dict[str, list[str]], headers: Message, *, allow_query: bool) -> str | None:
    """The API key a request carried where the provider accepts it (header first), or None."""
    header_names, query_names = _KEY_LOCATIONS[provider]
    for name in header_names:
        value = headers.get(name)
        if value:
            return value.removeprefix("Bearer ").strip()
    if allow_query or not header_names:
        for name in query_names:
            value = query_param(params, name)
            if value:
                return value
    return None


# provider -> (headers, query params) that may carry the key; header-less means query-only.
_KEY_LOCATIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "coingecko": (("x-cg-demo-api-key", "x-cg-pro-api-key"), ("x_cg_demo_api_key", "x_cg_pro_api_key")),
    "alphavantage": ((), ("apikey",)),
    "coinmarketcap": (("X-CMC_PRO_API_KEY",), ("CMC_PRO_API_KEY",)),
    "newsapi": (("X-Api-Key", "Authorization"), ("apiKey",)),
}


@dataclass(slots=True)
class ApiRequest:
    """One provider request as the fake APIs see it: provider-relative path, params, headers."""

    provider: str
    path: str  # provider-relative, e.g. /api/v3/klines
    params: dict[str, list[str]]
    headers: Message
    nan: bool = False

    def get(self, name: str) -> str | None:
        """The first value of query parameter ``name``, or None."""
        return query_param(self.params, name)
