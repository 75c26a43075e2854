"""Faults the server can inject and the error replies each provider sends for them.

Faults are armed per provider (one at a time, for ``count`` requests or until cleared) or drawn at
random: with a fault rate, each provider request that has no armed fault gets a fault picked from
``kinds`` with that probability, from a seeded generator so a run can be repeated.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from backend.fake_provider.binance import BINANCE_1003
from backend.fake_provider.coinmarketcap import cmc_status
from backend.fake_provider.newsapi import news_error
from backend.fake_provider.wire import PROVIDERS, Reply, json_reply, text_reply
from backend.fake_provider.yahoo import YAHOO_UNAUTHORIZED, yahoo_finance_error

FAULT_KINDS = (
    "status_429",  # 429 + Retry-After + the provider's own 429 body
    "status_429_no_retry_after",  # the same without Retry-After
    "status_500",
    "status_503",
    "hang",  # sleep `seconds` (<= 30) before answering normally
    "truncated_json",  # the normal 200 body cut in half (Content-Length matches the cut body)
    "html_error",  # a Cloudflare-like HTML page, status 502 unless `status` is given
    "nan_values",  # NaN in every price ("NaN" where the API uses strings)
    "throttle_body",  # the provider's distinctive throttle reply, see _throttle_reply
    "bad_key",  # the provider's invalid-key reply
    "status_418",  # 418 + Retry-After: the IP ban Binance escalates ignored 429s into
    "nan_records",  # a bare NaN (not JSON, but some APIs send it) as the price of the first record only
    "cut_connection",  # Content-Length of the whole body, half of it sent, then the connection closes
)
# What a random fault rate draws from unless told otherwise: the faults of a bad day at a provider.
RANDOM_FAULT_KINDS = ("status_429", "status_500", "truncated_json", "nan_records")
# Where a record's price lives in each wire format, searched in this order.
_PRICE_KEYS = ("lastPrice", "price", "regularMarketPrice", "usd", "05. price", "current_price")


MAX_HANG_SECONDS = 30.0


@dataclass(slots=True)
class Fault:
    """One fault armed for a provider; ``remaining`` None means until cleared."""

    provider: str
    kind: str
    remaining: int | None = None
    path: str | None = None  # only requests whose provider-relative path starts with this
    seconds: float = 10.0  # hang
    retry_after: int = 1  # status_429 (and Binance's 418 throttle_body)
    status: int | None = None  # overrides the status of html_error / throttle_body
    variant: str | None = None  # throttle_body: Alpha Vantage "note"/"information", CMC "1008".."1011"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_FAULT_VARIANTS = {"alphavantage": ("information", "note"), "coinmarketcap": ("1008", "1009", "1010", "1011")}


def validate_fault(fault: Fault) -> None:
    """Raise ValueError naming what is wrong with a fault spec."""
    if fault.provider not in PROVIDERS:
        raise ValueError(f"unknown provider {fault.provider!r}; expected one of {', '.join(PROVIDERS)}")
    if fault.kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault {fault.kind!r}; expected one of {', '.join(FAULT_KINDS)}")
    if fault.remaining is not None and (
        isinstance(fault.remaining, bool) or not isinstance(fault.remaining, int) or fault.remaining < 1
    ):
        raise ValueError("count must be a positive integer or null (until cleared)")
    if not 0 < float(fault.seconds) <= MAX_HANG_SECONDS:
        raise ValueError(f"seconds must be in (0, {MAX_HANG_SECONDS:g}]")
    if isinstance(fault.retry_after, bool) or not isinstance(fault.retry_after, int) or fault.retry_after < 0:
        raise ValueError("retry_after must be a non-negative integer")
    if fault.status is not None and not (isinstance(fault.status, int) and 100 <= fault.status <= 599):
        raise ValueError("status must be an HTTP status code")
    if fault.kind in ("nan_values", "nan_records") and fault.provider == "newsapi":
        raise ValueError(f"{fault.kind} does not apply to newsapi (it serves no prices)")
    if fault.variant is not None and fault.variant not in _FAULT_VARIANTS.get(fault.provider, ()):
        allowed = _FAULT_VARIANTS.get(fault.provider, ())
        raise ValueError(f"variant {fault.variant!r} not valid for {fault.provider}; allowed: {allowed}")


_AV_NOTE = (
    "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute and 500 calls "
    "per day. Please visit https://www.alphavantage.co/premium/ if you would like to target a higher API "
    "call frequency."
)


_AV_INFORMATION = (
    "Thank you for using Alpha Vantage! Our standard API rate limit is 25 requests per day. Please subscribe "
    "to any of the premium plans at https://www.alphavantage.co/premium/ to instantly remove all daily rate "
    "limits."
)


_AV_BAD_KEY = (
    "the parameter apikey is invalid or missing. Please claim your free API key on "
    "(https://www.alphavantage.co/support/#api-key). It should take less than 20 seconds."
)


_CG_429 = (
    "You've exceeded the Rate Limit. Please visit https://www.coingecko.com/en/api/pricing to subscribe to "
    "our API plans for higher rate limits."
)


_CLOUDFLARE_HTML = """<!DOCTYPE html>
<html lang="en-US"><head><title>{host} | {status}: {reason}</title>
<meta charset="UTF-8" /></head>
<body><div id="cf-wrapper"><h1><span class="cf-error-type">Error</span>
<span class="cf-error-code">{status}</span></h1>
<h2 class="cf-subheadline">{reason}</h2>
<p>Cloudflare Ray ID: <strong>{ray}</strong> &bull; Performance &amp; security by Cloudflare</p>
</div></body></html>
"""


_REASONS = {
    403: "Access denied",
    429: "Too Many Requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    520: "Web server is returning an unknown error",
    522: "Connection timed out",
}


def bad_key_reply(provider: str, *, missing: bool, now: float) -> Reply:
    """The provider's own reply to a missing or wrong API key."""
    if provider == "yahoo":
        return yahoo_finance_error(401, "Unauthorized", YAHOO_UNAUTHORIZED)
    if provider == "binance":
        return json_reply(401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."})
    if provider == "coingecko":
        message = "Missing API Key" if missing else "Invalid API Key"
        return json_reply(401, {"error": {"status": {"error_code": 10002, "error_message": message}}})
    if provider == "alphavantage":
        return json_reply(200, {"Error Message": _AV_BAD_KEY})
    if provider == "coinmarketcap":
        return json_reply(401, cmc_status(1002 if missing else 1001, now))
    return news_error(401, "apiKeyMissing" if missing else "apiKeyInvalid")


def _rate_limited_reply(provider: str, sub: str, now: float) -> Reply:
    """The provider's ordinary 429 body (headers are added by the caller)."""
    if provider == "yahoo":
        return text_reply(429, "Too Many Requests")
    if provider == "binance":
        return json_reply(429, {"code": -1003, "msg": BINANCE_1003 % 6000})
    if provider == "coingecko":
        return json_reply(429, {"status": {"error_code": 429, "error_message": _CG_429}})
    if provider == "alphavantage":
        return json_reply(429, {"Information": _AV_INFORMATION})
    if provider == "coinmarketcap":
        return json_reply(429, cmc_status(1008, now))
    return news_error(429, "rateLimited")


def _throttle_reply(provider: str, sub: str, fault: Fault, now: float) -> Reply:
    """Each provider's most characteristic throttle signal.

    Alpha Vantage: HTTP 200 with ``Information`` (variant "note": the older ``Note``).
    Yahoo: 429 plain text, ``Edge: Too Many Requests`` on getcrumb, no Retry-After.
    Binance: the escalation, 418 IP ban with Retry-After. CoinGecko: its JSON 429, no
    retry-after. CoinMarketCap: 429 with error_code 1009 (variant picks 1008-1011).
    NewsAPI: 429 ``apiKeyExhausted``.
    """
    if provider == "alphavantage":
        key = "Note" if fault.variant == "note" else "Information"
        reply = json_reply(200, {key: _AV_NOTE if key == "Note" else _AV_INFORMATION})
    elif provider == "yahoo":
        reply = text_reply(
            429, "Edge: Too Many Requests" if sub.startswith("/v1/test/getcrumb") else "Too Many Requests"
        )
    elif provider == "binance":
        until = int((now + max(fault.retry_after, 1)) * 1000)
        msg = (
            f"Way too much request weight used; IP banned until {until}. "
            "Please use WebSocket Streams for live updates to avoid bans."
        )
        reply = json_reply(418, {"code": -1003, "msg": msg}, [("Retry-After", str(fault.retry_after))])
    elif provider == "coinmarketcap":
        reply = json_reply(429, cmc_status(int(fault.variant or 1009), now))
    elif provider == "newsapi":
        reply = news_error(429, "apiKeyExhausted")
    else:
        reply = _rate_limited_reply(provider, sub, now)
    if fault.status is not None:
        reply.status = fault.status
    return reply


def _server_error_reply(provider: str, status: int, now: float) -> Reply:
    if provider == "yahoo":
        return yahoo_finance_error(status, "Internal Server Error", f"HTTP {status} from upstream")
    if provider == "binance":
        if status == 503:
            return json_reply(
                503,
                {
                    "code": -1008,
                    "msg": "Server is currently overloaded with other requests. Please try again in a few minutes.",
                },
            )
        return json_reply(500, {"code": -1000, "msg": "An unknown error occurred while processing the request."})
    if provider == "coingecko":
        return json_reply(status, {"status": {"error_code": status, "error_message": "Internal server error"}})
    if provider == "alphavantage":
        return text_reply(status, "Internal Server Error" if status == 500 else "Service Unavailable")
    if provider == "coinmarketcap":
        return json_reply(status, cmc_status(status, now))
    return news_error(status, "unexpectedError")


def fault_reply(provider: str, sub: str, fault: Fault, now: float) -> Reply:
    """The reply that replaces a normal one for faults that are not body faults."""
    kind = fault.kind
    if kind in ("status_429", "status_429_no_retry_after"):
        reply = _rate_limited_reply(provider, sub, now)
        if kind == "status_429":
            reply.headers.append(("Retry-After", str(fault.retry_after)))
        return reply
    if kind == "status_418":
        if provider == "binance":
            return _throttle_reply(provider, sub, fault, now)  # Binance's own ban body
        banned = _rate_limited_reply(provider, sub, now)
        banned.status = 418
        banned.headers.append(("Retry-After", str(fault.retry_after)))
        return banned
    if kind == "status_500":
        return _server_error_reply(provider, 500, now)
    if kind == "status_503":
        return _server_error_reply(provider, 503, now)
    if kind == "html_error":
        status = fault.status or 502
        page = _CLOUDFLARE_HTML.format(
            host=f"{provider}.invalid",
            status=status,
            reason=_REASONS.get(status, "Error"),
            ray=secrets.token_hex(8),
        )
        return text_reply(status, page, "text/html; charset=UTF-8")
    if kind == "throttle_body":
        return _throttle_reply(provider, sub, fault, now)
    if kind == "bad_key":
        return bad_key_reply(provider, missing=False, now=now)
    raise AssertionError(f"fault {kind} has no immediate reply")


# Faults that change a normal reply instead of replacing it.
BODY_FAULTS = frozenset({"hang", "truncated_json", "nan_values", "nan_records", "cut_connection"})


def with_bare_nan(body: bytes) -> bytes:
    """The same JSON body with the first record's price replaced by a bare ``NaN`` literal."""
    try:
        document = json.loads(body)
    except ValueError:
        return body
    if not _poison_first_price(document):
        return body
    return json.dumps(document, separators=(",", ":"), allow_nan=True).encode()


def _poison_first_price(node: Any) -> bool:
    if isinstance(node, dict):
        for key in _PRICE_KEYS:
            value = node.get(key)
            if isinstance(value, int | float | str) and not isinstance(value, bool):
                node[key] = math.nan
                return True
        return any(_poison_first_price(child) for child in node.values())
    if isinstance(node, list):
        return any(_poison_first_price(child) for child in node)
    return False


@dataclass(frozen=True, slots=True)
class FaultRate:
    """Random faults: ``rate`` of the requests to ``providers`` (all when empty) get one of ``kinds``."""

    rate: float = 0.0
    kinds: tuple[str, ...] = RANDOM_FAULT_KINDS
    seed: int | None = None
    providers: tuple[str, ...] = ()
    retry_after: int = 1

    def check(self) -> None:
        """Raise ValueError when the rate, kinds or providers are out of range."""
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        if not self.kinds or any(kind not in FAULT_KINDS or kind == "hang" for kind in self.kinds):
            raise ValueError(f"kinds must be fault kinds other than hang, from {', '.join(FAULT_KINDS)}")
        if any(provider not in PROVIDERS for provider in self.providers):
            raise ValueError(f"providers must be among {', '.join(PROVIDERS)}")


class FaultBook:
    """The faults armed on a server, and its random fault rate; safe to use from handler threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: dict[str, Fault] = {}
        self._rate = FaultRate()
        self._rng = random.Random()

    def arm(self, fault: Fault) -> Fault:
        """Arm ``fault`` for its provider (replacing any armed one); returns a copy."""
        validate_fault(fault)
        with self._lock:
            self._armed[fault.provider] = fault
        return dataclasses.replace(fault)

    def clear(self, provider: str | None = None) -> None:
        """Disarm every fault (or the one of ``provider``); the random rate stays as set."""
        with self._lock:
            if provider is None:
                self._armed.clear()
            else:
                self._armed.pop(provider, None)

    def armed(self) -> list[dict[str, Any]]:
        """The armed faults, as dicts (for the control endpoint and tests)."""
        with self._lock:
            return [f.to_dict() for f in self._armed.values()]

    def set_rate(self, rate: FaultRate) -> FaultRate:
        """Start (or, with rate 0, stop) random faults; a seed makes the sequence of draws repeatable."""
        rate.check()
        with self._lock:
            self._rate = rate
            self._rng = random.Random(rate.seed)
        return rate

    def rate(self) -> FaultRate:
        """The current random fault rate."""
        with self._lock:
            return self._rate

    def take(self, provider: str, path: str) -> Fault | None:
        """The fault for this request: the armed one if it applies, else maybe a random one."""
        with self._lock:
            armed = self._armed.get(provider)
            if armed is not None and (armed.path is None or path.startswith(armed.path)):
                if armed.remaining is not None:
                    armed.remaining -= 1
                    if armed.remaining <= 0:
                        del self._armed[provider]
                return dataclasses.replace(armed)
            rate = self._rate
            if rate.rate <= 0 or (rate.providers and provider not in rate.providers):
                return None
            if self._rng.random() >= rate.rate:
                return None
            kinds = [k for k in rate.kinds if provider != "newsapi" or k not in ("nan_values", "nan_records")]
            kind = self._rng.choice(kinds) if kinds else None
        if kind is None:
            return None
        return Fault(provider, kind, 1, retry_after=rate.retry_after)
