"""A 4xx whose JSON body was cut off in transit is a truncated reply (transient), not a permanent refusal."""

from __future__ import annotations

import httpx
import pytest

from backend.providers.errors import PermanentProviderError, TruncatedReplyError
from backend.providers.http import request_json


def client(status: int, body: bytes) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(status, content=body)))


def test_a_cut_off_error_body_is_a_truncated_reply() -> None:
    with client(400, b'{"code":-1121,"msg"') as http, pytest.raises(TruncatedReplyError):
        request_json(http, "GET", "https://api.test/x", provider="binance")


@pytest.mark.parametrize("body", [b'{"code":-1100,"msg":"Illegal characters"}', b"Bad Request", b""])
def test_a_complete_or_empty_error_body_stays_permanent(body: bytes) -> None:
    with client(400, body) as http, pytest.raises(PermanentProviderError) as caught:
        request_json(http, "GET", "https://api.test/x", provider="binance")
    assert not isinstance(caught.value, TruncatedReplyError)
