"""NewsApiClient against a MockTransport fake of /v2/everything with two pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from backend.providers.errors import (
    InvalidKeyError,
    MalformedReplyError,
    PermanentProviderError,
    TransientProviderError,
    TruncatedReplyError,
)
from backend.providers.newsapi import NewsApiClient
from tests.unit.providers.fakes import SECRET, FakeApi, fixture_json, json_response

PAGE1 = fixture_json("newsapi", "everything_page1.json")
PAGE2 = fixture_json("newsapi", "everything_page2.json")


def everything(request: httpx.Request) -> httpx.Response:
    if request.headers.get("X-Api-Key") != SECRET:
        return json_response("newsapi", "bad_key.json", 401)
    page = request.url.params["page"]
    return json_response("newsapi", "everything_page1.json" if page == "1" else "everything_page2.json")


def full_pages(request: httpx.Request) -> httpx.Response:
    """Pages of exactly 100 articles, 350 results in all, so pagination must continue."""
    page = int(request.url.params["page"])
    template = PAGE1["articles"][0]
    count = 100 if page <= 3 else 50
    rows = [{**template, "url": f"https://news.test/p{page}/a{i}"} for i in range(count)]
    return httpx.Response(200, json={"status": "ok", "totalResults": 350, "articles": rows})


@pytest.fixture
def news(fake: FakeApi, clock) -> NewsApiClient:
    fake.route("/v2/everything", everything)
    return NewsApiClient(fake.client(), base_url=fake.base_url, api_key=SECRET, clock=clock)


def client_for(fake: FakeApi, clock, handler) -> NewsApiClient:
    fake.route("/v2/everything", handler)
    return NewsApiClient(fake.client(), base_url=fake.base_url, api_key=SECRET, clock=clock)


def test_it_maps_articles_and_sends_the_key_as_a_header(news: NewsApiClient, fake: FakeApi) -> None:
    articles = news.fetch_articles("bitcoin OR ethereum", since=datetime(2026, 11, 26, 8, 0, tzinfo=UTC))
    first = articles[0]
    assert first.url == "https://www.reuters.com/markets/currencies/bitcoin-climbs-2026-11-27/"
    assert first.title == "Bitcoin climbs as ETF inflows resume"
    assert first.published_at == datetime(2026, 11, 27, 14, 5, tzinfo=UTC)
    assert first.publisher == "Reuters"
    assert first.source == "newsapi"
    assert articles[1].summary == ""  # null description
    params = fake.requests[0].url.params
    assert params["q"] == "bitcoin OR ethereum"
    assert params["from"] == "2026-11-26T08:00:00"
    assert params["pageSize"] == "100"
    assert fake.requests[0].headers["X-Api-Key"] == SECRET
    assert SECRET not in str(fake.requests[0].url)


def test_it_stops_paging_when_a_page_is_short(news: NewsApiClient, fake: FakeApi) -> None:
    news.fetch_articles("bitcoin")
    assert len(fake.requests) == 1


def test_it_pages_until_max_pages(fake: FakeApi, clock) -> None:
    articles = client_for(fake, clock, full_pages).fetch_articles("bitcoin", max_pages=3)
    assert [r.url.params["page"] for r in fake.requests] == ["1", "2", "3"]
    assert len(articles) == 300


def test_it_stops_when_total_results_are_reached(fake: FakeApi, clock) -> None:
    articles = client_for(fake, clock, full_pages).fetch_articles("bitcoin", max_pages=10)
    assert len(fake.requests) == 4
    assert len(articles) == 350


def test_it_dedupes_articles_by_url(fake: FakeApi, clock) -> None:
    body = {"status": "ok", "totalResults": 2, "articles": [PAGE1["articles"][0], PAGE1["articles"][0]]}
    articles = client_for(fake, clock, lambda request: httpx.Response(200, json=body)).fetch_articles("x")
    assert len(articles) == 1


def test_it_drops_unusable_articles_and_keeps_the_rest(fake: FakeApi, clock) -> None:
    good = PAGE2["articles"][0]
    bad = [
        {**good, "url": "javascript:alert(1)"},
        {**good, "url": "https://removed.com", "title": "[Removed]"},
        {**good, "url": "https://a.test/1", "publishedAt": "2026-11-27T14:05:00"},  # naive
        {**good, "url": "https://a.test/2", "publishedAt": "2027-01-01T00:00:00Z"},  # future
        {**good, "url": "https://a.test/3", "title": None},
    ]
    body = {"status": "ok", "totalResults": 6, "articles": [*bad, good]}
    articles = client_for(fake, clock, lambda request: httpx.Response(200, json=body)).fetch_articles("x")
    assert [a.url for a in articles] == [good["url"]]


def test_a_long_article_url_is_kept_whole_and_an_absurd_one_dropped(fake: FakeApi, clock) -> None:
    good = PAGE2["articles"][0]
    long_url = "https://www.example.com/markets/story?utm_source=feed&ref=" + "a1" * 700  # 1,458 characters
    rows = [{**good, "url": long_url}, {**good, "url": "https://a.test/?q=" + "x" * 9000}]
    body = {"status": "ok", "totalResults": 2, "articles": rows}
    articles = client_for(fake, clock, lambda request: httpx.Response(200, json=body)).fetch_articles("x")
    assert [a.url for a in articles] == [long_url]


def test_control_characters_in_titles_are_stripped(fake: FakeApi, clock) -> None:
    row = {**PAGE2["articles"][0], "title": "Fake\r\nINFO admin logged in"}
    body = {"status": "ok", "totalResults": 1, "articles": [row]}
    (article,) = client_for(fake, clock, lambda request: httpx.Response(200, json=body)).fetch_articles("x")
    assert "\n" not in article.title and "\r" not in article.title


def test_a_rate_limit_is_transient_with_retry_after(fake: FakeApi, clock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return json_response("newsapi", "rate_limited.json", 429, **{"Retry-After": "3600"})

    with pytest.raises(TransientProviderError) as info:
        client_for(fake, clock, handler).fetch_articles("bitcoin")
    assert info.value.retry_after == 3600.0


def test_a_bad_key_is_invalid_key(fake: FakeApi, clock) -> None:
    fake.route("/v2/everything", everything)
    client = NewsApiClient(fake.client(), base_url=fake.base_url, api_key="bad", clock=clock)
    with pytest.raises(InvalidKeyError, match="apiKeyInvalid"):
        client.fetch_articles("bitcoin")


def test_a_missing_key_fails_before_any_request(fake: FakeApi, clock) -> None:
    with pytest.raises(InvalidKeyError):
        NewsApiClient(fake.client(), base_url=fake.base_url, clock=clock).fetch_articles("bitcoin")
    assert fake.requests == []


def test_the_plan_result_limit_ends_paging_without_losing_earlier_pages(fake: FakeApi, clock) -> None:
    def capped(request: httpx.Request) -> httpx.Response:
        if request.url.params["page"] == "1":
            return full_pages(request)
        return json_response("newsapi", "maximum_results.json", 426)

    articles = client_for(fake, clock, capped).fetch_articles("bitcoin", max_pages=3)
    assert len(articles) == 100
    assert len(fake.requests) == 2


def test_a_bad_parameter_is_permanent(fake: FakeApi, clock) -> None:
    body = {"status": "error", "code": "parameterInvalid", "message": "bad q"}
    with pytest.raises(PermanentProviderError) as info:
        client_for(fake, clock, lambda request: httpx.Response(400, json=body)).fetch_articles("bitcoin")
    assert not isinstance(info.value, TransientProviderError)


def test_a_truncated_body_is_transient(fake: FakeApi, clock) -> None:
    body = b'{"status": "ok", "articles": [{"url": "ht'
    with pytest.raises(TruncatedReplyError):
        client_for(fake, clock, lambda request: httpx.Response(200, content=body)).fetch_articles("bitcoin")


@pytest.mark.parametrize("body", [b"<html></html>", b'{"totalResults": NaN}'])
def test_broken_bodies_are_malformed(fake: FakeApi, clock, body: bytes) -> None:
    with pytest.raises(MalformedReplyError):
        client_for(fake, clock, lambda request: httpx.Response(200, content=body)).fetch_articles("bitcoin")


@pytest.mark.parametrize("query", ["", "   ", "x" * 501, "bitcoin\r\nHost: evil.test"])
def test_bad_queries_are_refused_before_any_request(news: NewsApiClient, fake: FakeApi, query: str) -> None:
    with pytest.raises(PermanentProviderError):
        news.fetch_articles(query)
    assert fake.requests == []


def test_a_naive_since_is_refused(news: NewsApiClient) -> None:
    with pytest.raises(PermanentProviderError):
        news.fetch_articles("bitcoin", since=datetime(2026, 11, 26) - timedelta(days=1))  # noqa: DTZ001
