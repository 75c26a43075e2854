"""The one place where provider HTTP happens: client factory, URL scrubbing and fault mapping.

Every provider module sends its requests through :func:`request_json` (or :func:`request_text`)
so that transport faults, HTTP statuses, oversized or non-JSON bodies all land on the error tree in
``backend.providers.errors`` the same way, and so that no exception text ever carries an API key.

Nothing here runs at import time: no client, no socket, no environment read.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import re
import unicodedata
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from http.cookiejar import Cookie, CookieJar
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from backend.common.redaction import scrub_text, scrub_url
from backend.providers.errors import (
    InvalidKeyError,
    MalformedReplyError,
    PermanentProviderError,
    ProviderError,
    ProviderThrottledError,
    TransientProviderError,
)
from backend.providers.jsonreply import parse_json_body

logger = logging.getLogger(__name__)

USER_AGENT = "FinanceHub/1.0 (+market-data; httpx)"
DEFAULT_MAX_BYTES = 5 * 1024 * 1024

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")

# Status -> error, in one table. Anything 4xx not listed is permanent.
_TRANSIENT_STATUSES = frozenset({408, 418, 425, 429})
_KEY_STATUSES = frozenset({401, 403})
# Binance's shortest IP ban; used when a 418 comes without Retry-After.
_BAN_WITHOUT_RETRY_AFTER = 120.0

# A hook lets a provider turn its own error body (e.g. Binance -1121) into a sharper error.
# It receives (status, parsed JSON body or None, scrubbed URL) and returns an error or None.
ErrorHook = Callable[[int, Any, str], ProviderError | None]


class NoCookieJar(CookieJar):
    """A cookie jar that keeps nothing.

    Providers keep the session state they need themselves (Yahoo's cookie on its client, sent as a
    header). A shared jar would hand one provider's cookies to every other provider on the same host
    and make every request walk the jar.
    """

    def set_cookie(self, cookie: Cookie) -> None:
        """Keep nothing."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        """Keep nothing from a response."""


def build_client(*, transport: httpx.BaseTransport | None = None, timeout: float = 10.0) -> httpx.Client:
    """Build the httpx client every provider shares; tests pass ``transport=httpx.MockTransport(...)``."""
    return httpx.Client(
        transport=transport,
        timeout=httpx.Timeout(timeout),
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        cookies=NoCookieJar(),
        # A redirect could take a keyed request to another host; never follow one.
        follow_redirects=False,
    )


def strip_control(text: object, limit: int = 200) -> str:
    """Make provider text safe for one log line: no control/CR/LF characters, at most ``limit`` chars."""
    cleaned = _CONTROL.sub(" ", str(text))
    cleaned = "".join(ch if unicodedata.category(ch) != "Cf" else " " for ch in cleaned).strip()
    if len(cleaned) > limit:
        return cleaned[: max(limit - 3, 0)] + "..."
    return cleaned


def join_url(base_url: str, path: str) -> str:
    """Join ``path`` onto ``base_url`` keeping the base's own path prefix (``http://h:1/prefix``)."""
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def path_segment(value: str) -> str:
    """Percent-encode one URL path segment; ``/``, ``?``, ``#`` and ``%`` can never survive unescaped."""
    return quote(value, safe="")


def check_base_url(base_url: str) -> str:
    """Validate a provider base URL from settings: http(s), a host, no credentials, query or fragment."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base_url must be an absolute http(s) URL, got {scrub_url(base_url)!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(f"base_url must not carry credentials, a query or a fragment: {scrub_url(base_url)!r}")
    return base_url.rstrip("/")


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Read a ``Retry-After`` header (delta seconds or HTTP date) as seconds; ``None`` if absent or junk."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
        return max(seconds, 0.0)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def loads_strict(body: bytes | str, *, provider: str, url: str) -> Any:
    """Parse JSON with floats as ``Decimal``; see :func:`backend.providers.jsonreply.parse_json_body`."""
    return parse_json_body(body, provider=provider, url=url)


def request_text(
    http: httpx.Client,
    method: str,
    url: str,
    *,
    provider: str,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    error_hook: ErrorHook | None = None,
    accept_status: Collection[int] = (),
) -> tuple[httpx.Response, str]:
    """Do one request and return the response with its body decoded as text; faults mapped as in
    :func:`request_json`, except that the body need not be JSON and ``accept_status`` codes pass."""
    response, body, safe_url = _send(
        http, method, url, provider=provider, params=params, headers=headers, max_bytes=max_bytes
    )
    if response.status_code not in accept_status:
        _raise_for_status(response, body, safe_url, provider=provider, error_hook=error_hook)
    try:
        return response, body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedReplyError(f"{provider}: body from {safe_url} is not UTF-8", provider=provider) from None


def request_json(
    http: httpx.Client,
    method: str,
    url: str,
    *,
    provider: str,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    error_hook: ErrorHook | None = None,
) -> Any:
    """Do one request and return its strictly parsed JSON body, mapping every fault onto the error tree.

    Timeouts/transport errors, 408/418/429/5xx -> ``TransientProviderError`` (with ``retry_after``;
    a 429 with ``Retry-After`` or any 418 -> ``ProviderThrottledError``, which pauses the provider);
    401/403 -> ``InvalidKeyError``; other 3xx/4xx -> ``PermanentProviderError``; an empty or cut-off
    body -> ``TruncatedReplyError`` (transient); an oversized, HTML or non-JSON body ->
    ``MalformedReplyError``. A bare NaN parses as a non-finite ``Decimal`` that the record checks
    refuse. ``error_hook`` may sharpen the mapping from the vendor's error body. Messages carry
    scrubbed URLs only.
    """
    response, body, safe_url = _send(
        http, method, url, provider=provider, params=params, headers=headers, max_bytes=max_bytes
    )
    _raise_for_status(response, body, safe_url, provider=provider, error_hook=error_hook)
    if body.strip() and _looks_like_html(response, body):
        raise MalformedReplyError(f"{provider}: HTML page instead of JSON from {safe_url}", provider=provider)
    return loads_strict(body, provider=provider, url=safe_url)


# --- internals -----------------------------------------------------------------------------------


class _TooLargeError(Exception):
    """The body went over the size cap."""


def _decimal(text: str) -> Decimal:
    return Decimal(text)


def _send(
    http: httpx.Client,
    method: str,
    url: str,
    *,
    provider: str,
    params: Mapping[str, Any] | None,
    headers: Mapping[str, str] | None,
    max_bytes: int,
) -> tuple[httpx.Response, bytes, str]:
    try:
        request = http.build_request(method, url, params=params, headers=headers)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise PermanentProviderError(
            f"{provider}: cannot build request for {scrub_url(url)} ({type(exc).__name__})", provider=provider
        ) from None
    safe_url = scrub_url(request.url)
    expected_host = request.url.host
    logger.debug("provider request %s %s %s", provider, method, safe_url)
    try:
        response = http.send(request, stream=True, follow_redirects=False)
        try:
            body = _read_capped(response, max_bytes)
        finally:
            response.close()
    except httpx.TimeoutException as exc:
        raise TransientProviderError(
            f"{provider}: timeout ({type(exc).__name__}) calling {safe_url}", provider=provider
        ) from None
    except httpx.TransportError as exc:
        raise TransientProviderError(
            f"{provider}: transport error ({type(exc).__name__}: {strip_control(scrub_text(str(exc)), 120)})"
            f" calling {safe_url}",
            provider=provider,
        ) from None
    except _TooLargeError:
        raise MalformedReplyError(
            f"{provider}: body from {safe_url} is larger than {max_bytes} bytes", provider=provider
        ) from None
    if response.url.host != expected_host:
        raise PermanentProviderError(
            f"{provider}: reply came from host {strip_control(response.url.host, 80)!r}, "
            f"not {expected_host!r} ({safe_url})",
            provider=provider,
        )
    logger.debug("provider reply %s %s %s bytes=%s", provider, response.status_code, safe_url, len(body))
    return response, body, safe_url


def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _TooLargeError
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise _TooLargeError
        chunks.append(chunk)
    return b"".join(chunks)


def _raise_for_status(
    response: httpx.Response,
    body: bytes,
    safe_url: str,
    *,
    provider: str,
    error_hook: ErrorHook | None,
) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    if status < 500 and status not in _TRANSIENT_STATUSES and body.lstrip()[:1] in (b"{", b"["):
        # An error body cut off mid-document hides the vendor's code (Binance's 400 -1121 for an unknown
        # pair): the cut is a transport fault, transient, never a permanent verdict about the symbols.
        try:
            parse_json_body(body, provider=provider, url=safe_url)
        except MalformedReplyError:
            pass  # complete, just not JSON: the status decides below
    parsed = _try_json(body)
    if error_hook is not None:
        refined = error_hook(status, parsed, safe_url)
        if refined is not None:
            header_wait = parse_retry_after(response.headers.get("retry-after"))
            if isinstance(refined, TransientProviderError) and header_wait is not None:
                refined.retry_after = header_wait  # the provider's own header beats our default wait
            raise refined
    detail = _error_detail(parsed, body)
    message = f"{provider}: HTTP {status} from {safe_url}" + (f": {detail}" if detail else "")
    if status in _TRANSIENT_STATUSES or status >= 500:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        if status == 418 or (status == 429 and retry_after is not None):
            # The provider named a time (418 is Binance's IP ban, at least two minutes): pause it for everyone.
            wait = retry_after if retry_after is not None else _BAN_WITHOUT_RETRY_AFTER
            raise ProviderThrottledError(message, provider=provider, retry_after=wait)
        raise TransientProviderError(message, provider=provider, retry_after=retry_after)
    if status in _KEY_STATUSES:
        raise InvalidKeyError(message, provider=provider)
    if 300 <= status < 400:
        raise PermanentProviderError(f"{message} (redirect refused)", provider=provider)
    raise PermanentProviderError(message, provider=provider)


def _try_json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"), parse_float=_decimal, parse_constant=_decimal)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def _error_detail(parsed: Any, body: bytes) -> str:
    """A short, scrubbed, single-line excerpt of the provider's error for the exception message."""
    if parsed is None:
        text = body[:200].decode("utf-8", errors="replace")
        if text.lstrip().startswith("<"):
            return "non-JSON (HTML) body"
        return strip_control(scrub_text(text), 120)
    return strip_control(scrub_text(json.dumps(parsed, default=str)), 160)


def _looks_like_html(response: httpx.Response, body: bytes) -> bool:
    content_type = response.headers.get("content-type", "").lower()
    return "html" in content_type or body.lstrip()[:1] == b"<"
