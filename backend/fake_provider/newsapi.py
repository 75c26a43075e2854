"""Fake NewsAPI: /v2/everything and /v2/top-headlines with generated articles."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from backend.fake_provider.market import DAY, hash64, iso_s
from backend.fake_provider.wire import ApiRequest, BadParam, Reply, comma_list, int_param, json_reply

_NEWS_MESSAGES = {
    "rateLimited": (
        "You have made too many requests recently. Developer accounts are limited to 100 requests over a "
        "24 hour period (50 requests available every 12 hours). Please upgrade to a paid plan if you need "
        "more requests."
    ),
    "apiKeyExhausted": "Your API key has no more requests available.",
    "apiKeyInvalid": (
        "Your API key is invalid or incorrect. Check your key, or go to https://newsapi.org to create a free API key."
    ),
    "apiKeyMissing": (
        "Your API key is missing. Append this to the URL with the apiKey param, or use the x-api-key HTTP header."
    ),
    "unexpectedError": "An unexpected error occurred.",
}


def news_error(status: int, code: str, message: str | None = None) -> Reply:
    """NewsAPI's error shape: status, code and its message."""
    return json_reply(status, {"status": "error", "code": code, "message": message or _NEWS_MESSAGES[code]})


_NEWS_SOURCES = (
    ("reuters", "Reuters"),
    ("bloomberg", "Bloomberg"),
    (None, "CoinDesk"),
    ("the-wall-street-journal", "The Wall Street Journal"),
    ("cnbc", "CNBC"),
    (None, "Yahoo Entertainment"),
    ("financial-times", "Financial Times"),
    (None, "Decrypt"),
    ("business-insider", "Business Insider"),
    ("associated-press", "Associated Press"),
)


_NEWS_VERBS = ("climbs", "slips", "rallies", "steadies", "tumbles", "edges higher", "drifts lower", "surges")


_NEWS_REASONS = (
    "ETF inflows resume",
    "traders eye the Fed",
    "earnings beat estimates",
    "volumes thin out",
    "regulators weigh in",
    "the dollar softens",
    "analysts raise targets",
    "risk appetite returns",
)

if TYPE_CHECKING:
    from backend.fake_provider.server import FakeProviderServer


_NEWS_AUTHORS = ("Jane Doe", "John Smith", "Akira Tanaka", "Maria Rossi", "Lena Fischer", "Omar Haddad")


_NEWS_CATEGORIES = ("business", "entertainment", "general", "health", "science", "sports", "technology")


class NewsApi:
    """The fake NewsAPI endpoints; reads the server's clock, options and unknown symbols."""

    provider = "newsapi"

    def __init__(self, server: FakeProviderServer) -> None:
        self.server = server

    def handle(self, req: ApiRequest) -> Reply:
        path = req.path.removeprefix("/v2")
        if path not in ("/everything", "/top-headlines"):
            return news_error(404, "routeNotFound", f"Route {req.path} not found.")
        q = req.get("q") or req.get("qInTitle") or ""
        sources = req.get("sources")
        if path == "/everything":
            if not (q or sources or req.get("domains")):
                return news_error(
                    400,
                    "parametersMissing",
                    "Required parameters are missing, the scope of your "
                    "search is too broad. Please set any of the following required parameters and "
                    "try again: q, qInTitle, sources, domains.",
                )
            default_size = 100
        else:
            if sources and (req.get("country") or req.get("category")):
                return news_error(
                    400,
                    "parameterInvalid",
                    "You can't mix the sources parameter with the country or category parameters.",
                )
            category = req.get("category")
            if category and category not in _NEWS_CATEGORIES:
                return news_error(400, "parameterInvalid", f"The category param is invalid: {category}.")
            if not (q or sources or req.get("country") or category):
                return news_error(
                    400,
                    "parametersMissing",
                    "Required parameters are missing. Please set any of "
                    "the following parameters and try again: sources, q, language, country, "
                    "category.",
                )
            default_size = 20
        if sources and len(comma_list(sources)) > 20:
            return news_error(
                400,
                "sourcesTooMany",
                "You have requested too many sources in a single request. "
                "Try splitting the request into 2 smaller requests.",
            )
        try:
            page_size = int_param(req.params, "pageSize", default_size) or default_size
            page = int_param(req.params, "page", 1) or 1
            window = self._news_window(req)
        except BadParam as exc:
            return news_error(400, "parameterInvalid", f"The {exc} parameter is invalid.")
        if not 1 <= page_size <= 100:
            return news_error(400, "parameterInvalid", "pageSize must be between 1 and 100.")
        if page < 1:
            return news_error(400, "parameterInvalid", "page must be 1 or greater.")
        if self.server.newsapi_developer_plan and (page - 1) * page_size >= 100:
            return news_error(
                426,
                "maximumResultsReached",
                "You have requested too many results. Developer accounts are limited to a max of 100 results.",
            )
        query_key = "|".join(
            f"{k}={v}" for k, v in sorted(req.params.items()) if k not in ("page", "pageSize", "apiKey")
        )
        words = re.findall(r"[A-Za-z0-9^.\-]+", q)
        if any(self.server.is_unknown(w) for w in words if w.upper() not in ("AND", "OR", "NOT")):
            total = 0
        else:
            total = 20 + hash64(path + query_key) % 480
        start, end = window
        topic = next((w for w in words if w.upper() not in ("AND", "OR", "NOT")), None) or (
            (req.get("category") or "Markets").title()
        )
        articles = [
            self._news_article(query_key, i, total, topic, start, end)
            for i in range((page - 1) * page_size, min(total, page * page_size))
        ]
        return json_reply(200, {"status": "ok", "totalResults": total, "articles": articles})

    def _news_window(self, req: ApiRequest) -> tuple[float, float]:
        now = self.server.now()
        delay = DAY if self.server.newsapi_developer_plan else 0

        def parse(name: str, default: float) -> float:
            raw = req.get(name)
            if not raw:
                return default
            try:
                moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError as exc:
                raise BadParam(name) from exc
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()

        end = min(parse("to", now - delay), now - delay)
        start = parse("from", end - 30 * DAY)
        return start, max(start, end)

    @staticmethod
    def _news_article(query_key: str, i: int, total: int, topic: str, start: float, end: float) -> dict[str, Any]:
        seed = hash64(f"{query_key}#{i}")
        source_id, source_name = _NEWS_SOURCES[seed % len(_NEWS_SOURCES)]
        published = end - (i + 1) * (end - start) / (total + 1)
        verb = _NEWS_VERBS[(seed >> 8) % len(_NEWS_VERBS)]
        reason = _NEWS_REASONS[(seed >> 16) % len(_NEWS_REASONS)]
        title = f"{topic} {verb} as {reason}"
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
        stamp = datetime.fromtimestamp(published, UTC)
        domain = (source_id or source_name.lower().replace(" ", "")).replace("the-", "")
        body = f"{title}. {topic} {verb} on {stamp:%A} as {reason}, according to market participants"
        return {
            "source": {"id": source_id, "name": source_name},
            "author": None if seed % 5 == 0 else _NEWS_AUTHORS[(seed >> 24) % len(_NEWS_AUTHORS)],
            "title": title,
            "description": None if seed % 11 == 0 else body[:160],
            "url": f"https://www.{domain}.com/markets/{stamp:%Y/%m/%d}/{slug}-{seed % 100000:05d}/",
            "urlToImage": None if seed % 7 == 0 else f"https://www.{domain}.com/img/{seed % 10**8:08d}.jpg",
            "publishedAt": iso_s(published),
            "content": None if seed % 13 == 0 else f"{body} ... [+{1000 + seed % 4000} chars]",
        }
