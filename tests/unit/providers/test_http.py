"""The one place where provider HTTP faults map onto the error tree."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from backend.providers.errors import (
    InvalidKeyError,
    MalformedReplyError,
    PermanentProviderError,
    ProviderThrottledError,
    TransientProviderError,
    TruncatedReplyError,
    UnknownSymbolError,
)
from backend.providers.http import (
    USER_AGENT,
    build_client,
    check_base_url,
    join_url,
    parse_retry_after,
    request_json,
    request_text,
    scrub_text,
    scrub_url,
    strip_control,
)
from tests.unit.providers.fakes import SECRET

URL = "https://api.test/v1/data"


def client_returning(response: httpx.Response) -> httpx.Client:
    return build_client(transport=httpx.MockTransport(lambda request: response))


def client_raising(exc: Exception) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return build_client(transport=httpx.MockTransport(handler))


def call(http: httpx.Client, **kwargs: object) -> object:
    return request_json(http, "GET", URL, provider="test", **kwargs)  # type: ignore[arg-type]


def test_build_client_sets_timeout_user_agent_and_refuses_redirects() -> None:
    http = build_client(timeout=3.5)
    assert http.timeout.read == 3.5
    assert http.headers["User-Agent"] == USER_AGENT
    assert http.follow_redirects is False


def test_the_shared_client_keeps_no_cookie_one_provider_was_sent() -> None:
    """Yahoo's session cookie (on its client, sent as a header) never rides along to another provider."""
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("cookie"))
        return httpx.Response(200, json={}, headers={"set-cookie": "A3=session; Path=/"})

    http = build_client(transport=httpx.MockTransport(handler))
    request_json(http, "GET", "http://127.0.0.1:9/yahoo/v1/test", provider="yahoo")
    request_json(http, "GET", "http://127.0.0.1:9/binance/api/v3/ticker", provider="binance")
    request_json(http, "GET", "http://127.0.0.1:9/yahoo/v1/test", provider="yahoo", headers={"Cookie": "A3=mine"})
    assert seen == [None, None, "A3=mine"]
    assert not http.cookies


def test_it_returns_parsed_json_with_decimal_floats() -> None:
    http = client_returning(httpx.Response(200, json={"price": 1.1, "n": 3}))
    assert call(http) == {"price": Decimal("1.1"), "n": 3}


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_a_bare_non_finite_constant_parses_as_a_non_finite_decimal_for_the_record_checks(constant: str) -> None:
    http = client_returning(httpx.Response(200, content=f'{{"price": {constant}, "ok": 1.5}}'.encode()))
    body = call(http)
    assert not body["price"].is_finite()
    assert body["ok"] == Decimal("1.5")


@pytest.mark.parametrize(
    "body",
    [
        b'{"price": "1.0", "sym',  # inside a string
        b'{"price": 1.0, "rows": [1, 2',  # inside an array
        b'[{"a": 1}, {"b": tr',  # inside a literal
        b'{"a": {"b": 1}',  # after a complete inner object
        '{"name": "caf\u00e9"}'.encode()[:-1] + "\u00e9".encode()[:1],  # inside a UTF-8 character
    ],
)
def test_a_body_cut_off_mid_document_is_a_transient_truncated_reply(body: bytes) -> None:
    with pytest.raises(TruncatedReplyError, match="truncated"):
        call(client_returning(httpx.Response(200, content=body)))


@pytest.mark.parametrize("body", [b'{"price": 1,, "a": 2}', b"price=1", b'{"a": 1} trailing'])
def test_a_complete_body_that_is_not_json_stays_permanent(body: bytes) -> None:
    with pytest.raises(MalformedReplyError, match="not JSON"):
        call(client_returning(httpx.Response(200, content=body)))


def test_it_rejects_an_html_page_served_with_status_200() -> None:
    page = b"<!DOCTYPE html><html><body>Just a moment...</body></html>"
    http = client_returning(httpx.Response(200, content=page, headers={"content-type": "text/html"}))
    with pytest.raises(MalformedReplyError, match="HTML"):
        call(http)


@pytest.mark.parametrize(("status", "headers", "wait"), [(429, {"Retry-After": "30"}, 30.0), (418, {}, 120.0)])
def test_a_429_with_retry_after_or_a_418_ban_asks_for_a_pause(status: int, headers: dict, wait: float) -> None:
    with pytest.raises(ProviderThrottledError) as caught:
        call(client_returning(httpx.Response(status, json={}, headers=headers)))
    assert caught.value.retry_after == wait


def test_a_429_without_retry_after_is_transient_but_names_no_pause() -> None:
    with pytest.raises(TransientProviderError) as caught:
        call(client_returning(httpx.Response(429, json={})))
    assert not isinstance(caught.value, ProviderThrottledError)


def test_an_empty_body_is_a_truncated_reply() -> None:
    with pytest.raises(TruncatedReplyError, match="empty"):
        call(client_returning(httpx.Response(200, content=b"")))


def test_it_rejects_a_body_over_the_size_cap() -> None:
    http = client_returning(httpx.Response(200, content=b'{"a": "' + b"x" * 5000 + b'"}'))
    with pytest.raises(MalformedReplyError, match="larger than 1000 bytes"):
        call(http, max_bytes=1000)


def test_it_rejects_a_streamed_body_over_the_cap_without_content_length() -> None:
    def chunks():  # no Content-Length: the cap must hold while streaming
        for _ in range(100):
            yield b"x" * 100

    http = client_returning(httpx.Response(200, content=chunks()))
    with pytest.raises(MalformedReplyError, match="larger than"):
        call(http, max_bytes=1000)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 418, 408])
def test_it_raises_transient_on_throttle_and_server_errors(status: int) -> None:
    http = client_returning(httpx.Response(status, text="Too Many Requests"))
    with pytest.raises(TransientProviderError) as info:
        call(http)
    assert f"HTTP {status}" in str(info.value)
    assert info.value.provider == "test"


def test_it_reads_retry_after_seconds_on_429() -> None:
    http = client_returning(httpx.Response(429, headers={"Retry-After": "119"}, json={}))
    with pytest.raises(TransientProviderError) as info:
        call(http)
    assert info.value.retry_after == 119.0


def test_it_leaves_retry_after_empty_when_the_header_is_junk() -> None:
    http = client_returning(httpx.Response(503, headers={"Retry-After": "soon"}, json={}))
    with pytest.raises(TransientProviderError) as info:
        call(http)
    assert info.value.retry_after is None


def test_parse_retry_after_accepts_an_http_date() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert parse_retry_after("Sat, 28 Nov 2026 12:01:30 GMT", now=now) == 90.0
    assert parse_retry_after("-5") is None
    assert parse_retry_after("nan") is None


@pytest.mark.parametrize("status", [401, 403])
def test_it_raises_invalid_key_on_401_and_403(status: int) -> None:
    with pytest.raises(InvalidKeyError):
        call(client_returning(httpx.Response(status, json={"message": "bad key"})))


@pytest.mark.parametrize("status", [400, 404, 422])
def test_it_raises_permanent_on_other_4xx(status: int) -> None:
    with pytest.raises(PermanentProviderError) as info:
        call(client_returning(httpx.Response(status, json={"message": "nope"})))
    assert not isinstance(info.value, TransientProviderError)


def test_it_refuses_to_follow_a_redirect() -> None:
    response = httpx.Response(302, headers={"Location": "https://evil.test/steal"})
    with pytest.raises(PermanentProviderError, match="redirect refused"):
        call(client_returning(response))


def test_it_maps_timeouts_and_connection_errors_to_transient() -> None:
    with pytest.raises(TransientProviderError, match="timeout"):
        call(client_raising(httpx.ReadTimeout("timed out")))
    with pytest.raises(TransientProviderError, match="transport error"):
        call(client_raising(httpx.ConnectError("connection refused")))


def test_an_error_hook_can_sharpen_the_mapping_from_the_body() -> None:
    def hook(status: int, body: object, url: str) -> UnknownSymbolError | None:
        if isinstance(body, dict) and body.get("code") == -1121:
            return UnknownSymbolError("unknown")
        return None

    http = client_returning(httpx.Response(400, json={"code": -1121, "msg": "Invalid symbol."}))
    with pytest.raises(UnknownSymbolError):
        call(http, error_hook=hook)


def test_it_rejects_a_reply_from_another_host() -> None:
    class DivertingClient(httpx.Client):
        # Stands in for a transport or proxy that answered for a different host than we asked.
        def send(self, request: httpx.Request, **kwargs: object) -> httpx.Response:
            other = httpx.Request("GET", "https://other.test/v1/data")
            return httpx.Response(200, json={"ok": True}, request=other)

    with pytest.raises(PermanentProviderError, match="other.test"):
        call(DivertingClient())


def test_exception_text_never_carries_the_key_from_the_query() -> None:
    http = client_returning(httpx.Response(500, text=f"upstream failed for apikey={SECRET}"))
    with pytest.raises(TransientProviderError) as info:
        request_json(http, "GET", URL, provider="test", params={"symbol": "IBM", "apikey": SECRET})
    assert SECRET not in str(info.value)
    assert "apikey=***" in str(info.value)


def test_transport_errors_never_carry_the_key_even_if_httpx_echoes_the_url() -> None:
    http = client_raising(httpx.ConnectError(f"failed GET {URL}?apikey={SECRET}"))
    with pytest.raises(TransientProviderError) as info:
        request_json(http, "GET", URL, provider="test", params={"apikey": SECRET})
    assert SECRET not in str(info.value)
    assert info.value.__cause__ is None


def test_request_text_can_accept_a_404_that_still_sets_a_cookie() -> None:
    http = client_returning(httpx.Response(404, text="not here", headers={"set-cookie": "A3=abc"}))
    response, text = request_text(http, "GET", URL, provider="test", accept_status=range(200, 500))
    assert text == "not here"
    assert response.headers["set-cookie"] == "A3=abc"


@pytest.mark.parametrize(
    "name", ["apikey", "api_key", "APIKEY", "key", "token", "crumb", "CMC_PRO_API_KEY", "x_cg_demo_api_key"]
)
def test_scrub_url_masks_every_secret_parameter(name: str) -> None:
    scrubbed = scrub_url(f"https://api.test/query?symbol=IBM&{name}={SECRET}&x=1")
    assert SECRET not in scrubbed
    assert "symbol=IBM" in scrubbed
    assert "x=1" in scrubbed


def test_scrub_url_masks_user_and_password() -> None:
    scrubbed = scrub_url(f"https://user:{SECRET}@api.test/x")
    assert SECRET not in scrubbed
    assert scrubbed.endswith("@api.test/x")


def test_scrub_text_masks_keys_inside_free_text_and_percent_encoded_forms() -> None:
    text = f"GET https://a.test/q?function=X&apikey={SECRET} failed; token%3D{SECRET} too"
    scrubbed = scrub_text(text)
    assert SECRET not in scrubbed
    assert "function=X" in scrubbed


def test_scrub_text_leaves_ordinary_words_alone() -> None:
    assert scrub_text("monkey=banana&keyboard=1") == "monkey=banana&keyboard=1"


def test_strip_control_removes_crlf_and_caps_length() -> None:
    cleaned = strip_control("line one\r\nFAKE LOG LINE\x1b[31m" + "x" * 500, limit=50)
    assert "\n" not in cleaned and "\r" not in cleaned and "\x1b" not in cleaned
    assert len(cleaned) == 50
    assert cleaned.endswith("...")


def test_join_url_keeps_the_base_path_prefix() -> None:
    assert join_url("http://127.0.0.1:8001/binance/", "/api/v3/klines") == (
        "http://127.0.0.1:8001/binance/api/v3/klines"
    )


@pytest.mark.parametrize(
    "bad", ["ftp://api.test", "api.test/v1", "https://u:p@api.test", "https://api.test/?k=1", "https:///x"]
)
def test_check_base_url_refuses_odd_base_urls(bad: str) -> None:
    with pytest.raises(ValueError):
        check_base_url(bad)
