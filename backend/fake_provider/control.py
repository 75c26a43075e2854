"""The ``/_control`` endpoints: health, faults, the request log and unknown symbols, over HTTP."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from backend.fake_provider.faults import FAULT_KINDS
from backend.fake_provider.wire import PROVIDERS, UNKNOWN_PREFIXES, Reply, json_reply, query_param

if TYPE_CHECKING:
    from backend.fake_provider.server import FakeProviderServer


def control(server: FakeProviderServer, method: str, path: str, query: str, body: bytes) -> Reply:
    """Answer one ``/_control/...`` request: health, faults, the request log, unknown symbols."""
    route = path[len("/_control") :].rstrip("/") or "/"
    params = parse_qs(query)
    provider = query_param(params, "provider")
    if route == "/health" and method == "GET":
        return json_reply(200, {"status": "ok", "providers": list(PROVIDERS), "faults": FAULT_KINDS})
    if route == "/faults":
        if method == "GET":
            return json_reply(200, {"faults": server.faults()})
        if method == "DELETE":
            server.clear_faults(provider)
            return json_reply(200, {"faults": server.faults()})
        if method == "POST":
            try:
                spec = json.loads(body or b"{}")
                if not isinstance(spec, dict):
                    raise ValueError("body must be a JSON object")
                unexpected = set(spec) - {
                    "provider",
                    "fault",
                    "count",
                    "path",
                    "seconds",
                    "retry_after",
                    "status",
                    "variant",
                }
                if unexpected:
                    raise ValueError(f"unexpected fields: {sorted(unexpected)}")
                armed = server.set_fault(
                    str(spec.get("provider")),
                    str(spec.get("fault")),
                    spec.get("count"),
                    path=spec.get("path"),
                    seconds=spec.get("seconds", 10.0),
                    retry_after=spec.get("retry_after", 1),
                    status=spec.get("status"),
                    variant=spec.get("variant"),
                )
            except (ValueError, TypeError) as exc:
                return json_reply(400, {"error": str(exc)})
            return json_reply(200, {"fault": armed.to_dict()})
    if route == "/fault-rate":
        return _fault_rate(server, method, body)
    if route == "/requests":
        if method == "GET":
            entries = server.requests(provider)
            return json_reply(200, {"count": len(entries), "requests": entries})
        if method == "DELETE":
            server.clear_requests()
            return json_reply(200, {"count": 0, "requests": []})
    if route == "/unknown":
        if method == "GET":
            return json_reply(200, {"symbols": server.unknown_symbols(), "prefixes": UNKNOWN_PREFIXES})
        if method == "POST":
            try:
                symbols = json.loads(body or b"{}").get("symbols")
                if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
                    raise ValueError('body must be {"symbols": ["..."]}')
            except (ValueError, AttributeError) as exc:
                return json_reply(400, {"error": str(exc)})
            server.add_unknown_symbols(*symbols)
            return json_reply(200, {"symbols": server.unknown_symbols()})
        if method == "DELETE":
            server.clear_unknown_symbols()
            return json_reply(200, {"symbols": []})
    if route in ("/health", "/faults", "/fault-rate", "/requests", "/unknown"):
        return json_reply(405, {"error": f"{method} not allowed on {path}"})
    return json_reply(404, {"error": f"no control endpoint {path!r}"})


def _fault_rate(server: FakeProviderServer, method: str, body: bytes) -> Reply:
    """GET the random fault rate, POST ``{"rate": 0.3, "kinds": [...], "seed": 7, ...}``, DELETE to stop it."""
    if method == "GET":
        return json_reply(200, {"fault_rate": server.fault_rate()})
    if method == "DELETE":
        server.set_fault_rate(0.0)
        return json_reply(200, {"fault_rate": server.fault_rate()})
    if method != "POST":
        return json_reply(405, {"error": f"{method} not allowed on /_control/fault-rate"})
    try:
        spec = json.loads(body or b"{}")
        if not isinstance(spec, dict):
            raise ValueError("body must be a JSON object")
        unexpected = set(spec) - {"rate", "kinds", "seed", "providers", "retry_after"}
        if unexpected:
            raise ValueError(f"unexpected fields: {sorted(unexpected)}")
        options = {name: spec[name] for name in ("kinds", "seed", "providers", "retry_after") if name in spec}
        server.set_fault_rate(float(spec.get("rate", 0.0)), **options)
    except (ValueError, TypeError) as exc:
        return json_reply(400, {"error": str(exc)})
    return json_reply(200, {"fault_rate": server.fault_rate()})
