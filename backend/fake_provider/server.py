"""The HTTP server: routing to the six fake APIs, fault injection, keys and the request log."""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from datetime import datetime
from email.message import Message
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, urlsplit

from backend.fake_provider.alphavantage import AlphaVantageApi
from backend.fake_provider.binance import BinanceApi, WeightMeter
from backend.fake_provider.coingecko import CoinGeckoApi
from backend.fake_provider.coinmarketcap import CoinMarketCapApi
from backend.fake_provider.control import control
from backend.fake_provider.faults import (
    BODY_FAULTS,
    RANDOM_FAULT_KINDS,
    Fault,
    FaultBook,
    FaultRate,
    bad_key_reply,
    fault_reply,
    with_bare_nan,
)
from backend.fake_provider.httpd import LoopbackHTTPServer, LoopbackHTTPServer6, RequestHandler, loopback_host
from backend.fake_provider.market import iso_ms
from backend.fake_provider.newsapi import NewsApi
from backend.fake_provider.wire import (
    KEYED_PROVIDERS,
    PROVIDERS,
    UNKNOWN_PREFIXES,
    ApiRequest,
    Clock,
    Reply,
    json_reply,
    key_location,
    mask_query,
    sent_key,
)
from backend.fake_provider.yahoo import YahooApi

logger = logging.getLogger(__name__)


class FakeProviderServer:
    """The six fake APIs on one loopback port; use as a context manager or start()/stop().

    ``keys`` maps provider -> expected API key (coingecko, alphavantage, coinmarketcap,
    newsapi); a missing or wrong key then gets the provider's bad-key reply. Header-auth
    providers are checked on their header only unless ``allow_query_keys`` is set, so a test
    can prove the client sends the key as a header. ``now`` (epoch seconds or an aware
    datetime) freezes the clock for fully reproducible output. ``fault_rate`` (with
    ``fault_seed``) fails that share of provider requests with random faults from the start.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        keys: dict[str, str] | None = None,
        unknown_symbols: Iterable[str] = (),
        log_file: str | Path | None = None,
        now: float | datetime | None = None,
        allow_query_keys: bool = False,
        yahoo_require_crumb: bool = True,
        binance_weight_limit: int | None = None,
        alphavantage_premium: bool = True,
        newsapi_developer_plan: bool = False,
        coinmarketcap_skip_invalid: bool = True,
        fault_rate: float = 0.0,
        fault_seed: int | None = None,
        max_logged_requests: int = 200_000,
    ) -> None:
        self.host = loopback_host(host)
        self.port = port
        self.keys = dict(keys or {})
        for provider in self.keys:
            if provider not in KEYED_PROVIDERS:
                raise ValueError(f"{provider!r} takes no API key here; keyed providers: {KEYED_PROVIDERS}")
        self.log_file = Path(log_file) if log_file else None
        self.allow_query_keys = allow_query_keys
        self.yahoo_require_crumb = yahoo_require_crumb
        self.alphavantage_premium = alphavantage_premium
        self.newsapi_developer_plan = newsapi_developer_plan
        # False: CoinMarketCap fails a whole batch on one unknown symbol even with skip_invalid=true.
        self.coinmarketcap_skip_invalid = coinmarketcap_skip_invalid
        if isinstance(now, datetime):
            if now.tzinfo is None:
                raise ValueError("now must be timezone-aware")
            now = now.timestamp()
        frozen = now
        self._clock: Clock = (lambda: frozen) if frozen is not None else time.time
        self._unknown: frozenset[str] = frozenset(s.upper() for s in unknown_symbols)
        self._lock = threading.Lock()
        self._faults = FaultBook()
        self._log: deque[dict[str, Any]] = deque(maxlen=max_logged_requests)
        self._clears = 0  # a request that arrived before the last clear is not recorded when it ends
        self._log_fh: TextIO | None = None
        self._weights = WeightMeter(binance_weight_limit)
        self._stopping = threading.Event()
        self._httpd: LoopbackHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._yahoo = YahooApi(self)
        apis = (self._yahoo, BinanceApi(self), CoinGeckoApi(self), AlphaVantageApi(self), CoinMarketCapApi(self))
        self._apis = {api.provider: api for api in (*apis, NewsApi(self))}
        if fault_rate:
            self.set_fault_rate(fault_rate, seed=fault_seed)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeProviderServer:
        if self._httpd is not None:
            raise RuntimeError("FakeProviderServer already started")
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log_fh = self.log_file.open("a", encoding="utf-8")
        server_cls = LoopbackHTTPServer6 if ":" in self.host else LoopbackHTTPServer
        self._stopping.clear()
        self._httpd = server_cls((self.host, self.port), self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="fake-provider-server",
            daemon=True,
        )
        self._thread.start()
        logger.info("Fake provider server listening on %s", self.url)
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()  # wakes any "hang" fault
        httpd.shutdown()
        httpd.server_close()
        with httpd.live_lock:
            live = list(httpd.live_sockets)
        for sock in live:  # drop idle keep-alive connections so clients see the server is gone
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the peer
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            if self._log_fh is not None:
                self._log_fh.close()
                self._log_fh = None
        logger.info("Fake provider server on port %s stopped", self.port)

    def __enter__(self) -> FakeProviderServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("FakeProviderServer is not running; call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def base_url(self, provider: str) -> str:
        """The value to pass as a client's base_url, e.g. http://127.0.0.1:PORT/binance."""
        if provider not in PROVIDERS:
            raise ValueError(f"unknown provider {provider!r}; expected one of {', '.join(PROVIDERS)}")
        return f"{self.url}/{provider}"

    # -- faults ------------------------------------------------------------------------------

    def set_fault(
        self,
        provider: str,
        fault: str,
        count: int | None = None,
        *,
        path: str | None = None,
        seconds: float = 10.0,
        retry_after: int = 1,
        status: int | None = None,
        variant: str | None = None,
    ) -> Fault:
        """Arm ``fault`` for the next ``count`` requests to ``provider`` (None: until cleared)."""
        armed = self._faults.arm(Fault(provider, fault, count, path, seconds, retry_after, status, variant))
        logger.info("Fault %s armed for %s (count=%s)", fault, provider, count)
        return armed

    def set_fault_rate(
        self,
        rate: float,
        *,
        kinds: Sequence[str] = RANDOM_FAULT_KINDS,
        seed: int | None = None,
        providers: Sequence[str] = (),
        retry_after: int = 1,
    ) -> FaultRate:
        """Fail ``rate`` of the requests (to ``providers``, default all) with a random fault from ``kinds``."""
        chosen = self._faults.set_rate(FaultRate(rate, tuple(kinds), seed, tuple(providers), retry_after))
        logger.info("Random faults at rate %s (kinds=%s, seed=%s)", rate, ",".join(kinds), seed)
        return chosen

    def clear_faults(self, provider: str | None = None) -> None:
        """Disarm faults (all, or one provider's); the random fault rate is stopped only with no provider."""
        self._faults.clear(provider)
        if provider is None:
            self._faults.set_rate(FaultRate())

    def faults(self) -> list[dict[str, Any]]:
        return self._faults.armed()

    def fault_rate(self) -> dict[str, Any]:
        return dataclasses.asdict(self._faults.rate())

    # -- unknown symbols, Yahoo session ------------------------------------------------------

    def add_unknown_symbols(self, *symbols: str) -> None:
        with self._lock:
            self._unknown = self._unknown | {s.upper() for s in symbols}

    def unknown_symbols(self) -> list[str]:
        """The symbols made unknown by name (the prefixes in ``UNKNOWN_PREFIXES`` are always unknown)."""
        with self._lock:
            return sorted(self._unknown)

    def clear_unknown_symbols(self) -> None:
        with self._lock:
            self._unknown = frozenset()

    def is_unknown(self, identifier: str, asset: str | None = None) -> bool:
        upper = identifier.upper()
        unknown = self._unknown
        return (
            upper.startswith(UNKNOWN_PREFIXES)
            or upper in unknown
            or (asset is not None and (asset.upper() in unknown or asset.upper().startswith(UNKNOWN_PREFIXES)))
        )

    def expire_yahoo_sessions(self) -> None:
        """Forget every issued Yahoo cookie, as if the crumbs expired."""
        self._yahoo.expire_sessions()

    def now(self) -> float:
        return self._clock()

    # -- request log -------------------------------------------------------------------------

    def requests(self, provider: str | None = None) -> list[dict[str, Any]]:
        """Recorded provider requests, oldest first (control requests are not recorded)."""
        with self._lock:
            entries = list(self._log)
        return [e for e in entries if provider is None or e["provider"] == provider]

    def clear_requests(self) -> None:
        """Forget the recorded requests (and any still being answered: a hang ends unrecorded)."""
        with self._lock:
            self._log.clear()
            self._clears += 1

    def _record(self, entry: dict[str, Any], clears_at_arrival: int) -> None:
        line = json.dumps(entry, separators=(",", ":")) + "\n" if self._log_fh is not None else ""
        with self._lock:
            if clears_at_arrival == self._clears:
                self._log.append(entry)
            if self._log_fh is not None:
                self._log_fh.write(line)
                self._log_fh.flush()

    # -- HTTP plumbing -----------------------------------------------------------------------

    def serve_request(self, handler: RequestHandler) -> None:
        """Answer one HTTP request (called by the request handler threads)."""
        started, clears_at_arrival = time.perf_counter(), self._clears
        try:
            length = int(handler.headers.get("Content-Length") or 0)
        except ValueError:
            self._send(handler, json_reply(400, {"error": "bad Content-Length"}))
            handler.close_connection = True
            return
        body = handler.rfile.read(length) if length > 0 else b""
        split = urlsplit(handler.path)
        path = split.path
        if path == "/_control" or path.startswith("/_control/"):
            self._send(handler, control(self, handler.command, path, split.query, body))
            return
        provider, _, rest = path.lstrip("/").partition("/")
        fault: Fault | None = None
        key_source: str | None = None
        if provider in PROVIDERS:
            reply, fault, key_source = self._provider_reply(provider, handler.command, "/" + rest, split.query, handler)
        else:
            prefixes = ", ".join("/" + p for p in PROVIDERS)
            reply = json_reply(404, {"error": f"no provider at {path!r}; mount points: {prefixes}"})
            provider = None
        # Record before answering: a client that reads the log right after its reply must find its request.
        self._record(
            {
                "time": iso_ms(time.time()),
                "provider": provider,
                "method": handler.command,
                "path": path,
                "query": mask_query(split.query),
                "status": reply.status,
                "fault": fault.kind if fault else None,
                "key_source": key_source,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "client_port": handler.client_address[1],
            },
            clears_at_arrival,
        )
        self._send(handler, reply, cut=fault is not None and fault.kind == "cut_connection")

    def _send(self, handler: RequestHandler, reply: Reply, *, cut: bool = False) -> None:
        """Write ``reply``; with ``cut``, announce the whole body, send half of it and close the connection."""
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", reply.content_type)
            handler.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers:
                handler.send_header(name, value)
            handler.end_headers()
            if cut:
                handler.wfile.write(reply.body[: len(reply.body) // 2])
                handler.close_connection = True
                return
            handler.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            # Expected after a "hang" fault: the client gave up before we answered.
            handler.close_connection = True

    def _provider_reply(
        self, provider: str, method: str, sub: str, query: str, handler: RequestHandler
    ) -> tuple[Reply, Fault | None, str | None]:
        params = parse_qs(query, keep_blank_values=True)
        headers = handler.headers
        key_source = key_location(provider, params, headers)
        fault = self._faults.take(provider, sub)
        nan = False
        if fault is not None:
            if fault.kind == "hang":
                logger.debug("Hanging %s%s for %ss", provider, sub, fault.seconds)
                if self._stopping.wait(fault.seconds):
                    handler.close_connection = True
            elif fault.kind == "nan_values":
                nan = True
            elif fault.kind not in BODY_FAULTS:
                return (
                    self._with_weight(provider, sub, params, fault_reply(provider, sub, fault, self.now())),
                    fault,
                    key_source,
                )
        if method != "GET":
            return json_reply(405, {"error": f"{method} not allowed"}), fault, key_source
        bad_key = self._check_key(provider, params, headers)
        if bad_key is not None:
            return self._with_weight(provider, sub, params, bad_key), fault, key_source
        if provider == "binance":
            throttled = self._weights.over_limit(sub, params)
            if throttled is not None:
                return throttled, fault, key_source
        req = ApiRequest(provider, sub, params, headers, nan)
        reply = self._apis[provider].handle(req)
        if fault is not None and fault.kind == "truncated_json":
            reply.body = reply.body[: max(1, len(reply.body) // 2)]
        elif fault is not None and fault.kind == "nan_records":
            reply.body = with_bare_nan(reply.body)
        return self._with_weight(provider, sub, params, reply), fault, key_source

    # -- keys and Binance weight -------------------------------------------------------------

    def _check_key(self, provider: str, params: dict[str, list[str]], headers: Message) -> Reply | None:
        expected = self.keys.get(provider)
        if expected is None:
            return None
        sent = sent_key(provider, params, headers, allow_query=self.allow_query_keys)
        if sent is not None and hmac.compare_digest(sent, expected):
            return None
        return bad_key_reply(provider, missing=not sent, now=self.now())

    def _with_weight(self, provider: str, sub: str, params: dict[str, list[str]], reply: Reply) -> Reply:
        return self._weights.charge(sub, params, reply) if provider == "binance" else reply
