"""NewsAPI (newsapi.org): ``/v2/everything`` search with pagination, mapped to ``Article`` records.

The key goes in the ``X-Api-Key`` header only. Articles with an unusable URL, title or timestamp (and
NewsAPI's ``[Removed]`` placeholders) are dropped with a log line, never failing the whole page.
``Article.source`` is ``"newsapi"``; the outlet's name goes in ``Article.publisher``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from backend.providers.base import ProviderClient
from backend.providers.errors import (
    InvalidKeyError,
    MalformedReplyError,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
)
from backend.providers.http import join_url, strip_control
from backend.providers.models import Article
from backend.providers.validation import Clock, InvalidRecordError, to_utc, utc_now

logger = logging.getLogger(__name__)

PAGE_SIZE = 100
MAX_QUERY_LENGTH = 500
# The store keeps URLs whole at any length (real article URLs pass 1,400 characters with tracking
# parameters); this bound only keeps junk out: 8 KiB is what common web servers accept in a request line.
MAX_URL_LENGTH = 8192
MAX_PAGES = 10
_KEY_CODES = frozenset({"apiKeyMissing", "apiKeyInvalid", "apiKeyDisabled"})
_THROTTLE_CODES = frozenset({"rateLimited", "apiKeyExhausted"})
_REMOVED_TITLE = "[Removed]"


class _ResultsExhausted(PermanentProviderError):
    """The plan allows no more results for this query (``maximumResultsReached``): stop paging."""


class NewsApiClient(ProviderClient):
    """NewsAPI client for keyword search over recent articles."""

    name = "newsapi"
    # One query per call; pages of up to 100 articles.
    batch_limit = PAGE_SIZE

    def __init__(
        self,
        http: httpx.Client,
        *,
        base_url: str,
        api_key: str | None = None,
        language: str | None = "en",
        clock: Clock = utc_now,
    ) -> None:
        super().__init__(http, base_url=base_url, api_key=api_key, clock=clock)
        if language is not None and (len(language) != 2 or not language.isalpha() or not language.islower()):
            raise ValueError("language must be a two-letter lower-case code such as 'en'")
        self._language = language

    def fetch_articles(self, query: str, *, since: datetime | None = None, max_pages: int = 3) -> list[Article]:
        """Search ``/v2/everything`` for ``query``, newest first, up to ``max_pages`` pages, deduped."""
        # Reference: https://newsapi.org/docs/endpoints/everything
        if not self._api_key:
            raise InvalidKeyError("newsapi: no API key configured", provider=self.name)
        base_params = _query_params(query, since=since, language=self._language, max_pages=max_pages)
        articles: dict[str, Article] = {}
        for page in range(1, max_pages + 1):
            params = {**base_params, "page": str(page)}
            try:
                raw = self._get_json(
                    join_url(self._base_url, "/v2/everything"),
                    params=params,
                    headers={"X-Api-Key": self._api_key},
                    error_hook=self._error_hook,
                )
            except _ResultsExhausted:
                if page == 1:
                    raise
                logger.info("newsapi stopped at page %s: plan result limit reached", page)
                break
            rows, total = _page(raw)
            for article in _to_articles(rows, now=self._clock()):
                articles.setdefault(article.url, article)
            if len(rows) < PAGE_SIZE or page * PAGE_SIZE >= total:
                break
        return list(articles.values())

    def _error_hook(self, status: int, body: Any, url: str) -> ProviderError | None:
        return _error_from_body(body, status=status, url=url)


def _query_params(query: str, *, since: datetime | None, language: str | None, max_pages: int) -> dict[str, str]:
    """Validate the search inputs and build the fixed query parameters."""
    if not isinstance(query, str) or not query.strip():
        raise PermanentProviderError("newsapi: query is empty", provider="newsapi")
    if len(query) > MAX_QUERY_LENGTH or strip_control(query, MAX_QUERY_LENGTH) != query.strip():
        raise PermanentProviderError("newsapi: query is too long or has control characters", provider="newsapi")
    if isinstance(max_pages, bool) or not isinstance(max_pages, int) or not 1 <= max_pages <= MAX_PAGES:
        raise PermanentProviderError(f"newsapi: max_pages must be 1..{MAX_PAGES}", provider="newsapi")
    params = {"q": query.strip(), "sortBy": "publishedAt", "pageSize": str(PAGE_SIZE)}
    if language:
        params["language"] = language
    if since is not None:
        if since.tzinfo is None:
            raise PermanentProviderError("newsapi: since must be timezone-aware", provider="newsapi")
        params["from"] = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return params


def _error_from_body(body: Any, *, status: int, url: str) -> ProviderError | None:
    """Map ``{"status": "error", "code": ...}`` onto the error tree (``None``: use the status table)."""
    if not isinstance(body, dict) or body.get("status") != "error":
        return None
    code = strip_control(body.get("code", ""), 40)
    text = f"newsapi: {code} (HTTP {status}) at {url}: {strip_control(body.get('message', ''), 160)}"
    if code in _KEY_CODES:
        return InvalidKeyError(text, provider="newsapi")
    if code in _THROTTLE_CODES:
        # request_json's default for 429 reads Retry-After; only a 200-with-error needs us here.
        return None if status == 429 else TransientProviderError(text, provider="newsapi")
    if code == "maximumResultsReached":
        return _ResultsExhausted(text, provider="newsapi")
    if code == "unexpectedError" or status >= 500:
        return TransientProviderError(text, provider="newsapi")
    return PermanentProviderError(text, provider="newsapi")


def _page(raw: Any) -> tuple[list[Any], int]:
    """Return (articles, totalResults) from one page, raising on an error or malformed body."""
    if isinstance(raw, dict) and raw.get("status") == "error":
        error = _error_from_body(raw, status=200, url="/v2/everything")
        raise error or MalformedReplyError("newsapi: error body", provider="newsapi")
    if not isinstance(raw, dict) or raw.get("status") != "ok" or not isinstance(raw.get("articles"), list):
        raise MalformedReplyError("newsapi: reply has no ok status and articles list", provider="newsapi")
    total = raw.get("totalResults")
    return raw["articles"], total if isinstance(total, int) and not isinstance(total, bool) else 0


def _to_articles(rows: list[Any], *, now: datetime | None) -> list[Article]:
    """Map a page of articles, dropping the ones that fail validation."""
    articles: list[Article] = []
    dropped = 0
    for row in rows:
        try:
            articles.append(_to_article(row, now=now))
        except InvalidRecordError:
            dropped += 1
    if dropped:
        logger.info("newsapi dropped %s unusable articles", dropped)
    return articles


def _to_article(raw: Any, *, now: datetime | None = None) -> Article:
    """Map one NewsAPI article object to an ``Article``."""
    if not isinstance(raw, dict):
        raise InvalidRecordError("article is not an object")
    url = raw.get("url")
    if not isinstance(url, str) or len(url) > MAX_URL_LENGTH:
        raise InvalidRecordError("url missing or too long")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or strip_control(url, MAX_URL_LENGTH) != url:
        raise InvalidRecordError("url is not an absolute http(s) URL")
    title = raw.get("title")
    if not isinstance(title, str) or not title.strip() or title.strip() == _REMOVED_TITLE:
        raise InvalidRecordError("title missing or removed")
    published = raw.get("publishedAt")
    if not isinstance(published, str):
        raise InvalidRecordError("publishedAt missing")
    source = raw.get("source")
    publisher = source.get("name") if isinstance(source, dict) else None
    description = raw.get("description")
    return Article(
        url=url,
        title=strip_control(title, 500),
        published_at=to_utc(published, now=now),
        source="newsapi",
        summary=strip_control(description, 2000) if isinstance(description, str) else "",
        publisher=strip_control(publisher, 200) if isinstance(publisher, str) else "",
    )
