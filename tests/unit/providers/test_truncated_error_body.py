"""An error reply cut off mid-body is a transport fault (transient), not the vendor's permanent verdict."""

from __future__ import annotations

import httpx
import pytest

from backend.providers.binance import BinanceClient
from backend.providers.errors import PermanentProviderError, TruncatedReplyError, UnknownSymbolError
from backend.providers.http import request_json


def _client(status: int, body: bytes) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(status, content=body)))


def test_a_400_whose_body_is_cut_off_is_truncated_not_permanent() -> None:
    with _client(400, b'{"code":-1121,"msg"') as http, pytest.raises(TruncatedReplyError):
        request_json(http, "GET", "https://api.example.test/x", provider="binance")


def test_a_complete_400_keeps_its_status_verdict() -> None:
    with _client(400, b'{"code":-1100,"msg":"Illegal characters"}') as http, pytest.raises(PermanentProviderError):
        request_json(http, "GET", "https://api.example.test/x", provider="binance")


def test_an_empty_404_is_not_mistaken_for_a_cut_body() -> None:
    with _client(404, b"") as http, pytest.raises(PermanentProviderError) as caught:
        request_json(http, "GET", "https://api.example.test/x", provider="binance")
    assert not isinstance(caught.value, TruncatedReplyError)


def test_binance_still_reads_a_complete_unknown_symbol_reply() -> None:
    body = b'{"code":-1121,"msg":"Invalid symbol."}'
    with _client(400, body) as http, pytest.raises(UnknownSymbolError):
        BinanceClient(http, base_url="https://api.example.test").fetch_bars("ZZZUSDT", interval="1d", limit=5)
