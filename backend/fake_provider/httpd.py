"""The HTTP layer under the fake server: a threaded loopback-only server and its request handler."""

from __future__ import annotations

import ipaddress
import logging
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from backend.fake_provider.server import FakeProviderServer

logger = logging.getLogger(__name__)


class LoopbackHTTPServer(ThreadingHTTPServer):
    """Threaded HTTP server that tracks live connections so ``stop`` can drop idle keep-alives."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], app: FakeProviderServer) -> None:
        self.app = app
        self.live_sockets: set[socket.socket] = set()
        self.live_lock = threading.Lock()
        super().__init__(address, RequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a DNS lookup that can stall offline.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.exception("Fake provider server failed while serving %s", client_address)


class LoopbackHTTPServer6(LoopbackHTTPServer):
    address_family = socket.AF_INET6


class RequestHandler(BaseHTTPRequestHandler):
    """Hands every request to the fake server; HTTP/1.1 keep-alive like the real APIs."""

    protocol_version = "HTTP/1.1"  # keep-alive, so httpx reuses connections
    server_version = "FakeProviderServer/1.0"
    sys_version = ""
    disable_nagle_algorithm = True  # headers and body go out in two writes
    timeout = 120  # idle keep-alive connections are dropped after this
    server: LoopbackHTTPServer

    def setup(self) -> None:
        super().setup()
        with self.server.live_lock:
            self.server.live_sockets.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.live_lock:
                self.server.live_sockets.discard(self.connection)

    def do_GET(self) -> None:
        self.server.app.serve_request(self)

    def do_POST(self) -> None:
        self.server.app.serve_request(self)

    def do_DELETE(self) -> None:
        self.server.app.serve_request(self)

    def do_PUT(self) -> None:
        self.server.app.serve_request(self)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("fake server: %s", format % args)


def loopback_host(host: str) -> str:
    """Normalise ``host`` to a loopback address; anything else is refused (the fake never faces a network)."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise ValueError(
            f"FakeProviderServer binds to loopback only (127.0.0.0/8, ::1, localhost); refusing host {host!r}"
        )
    return str(address)
