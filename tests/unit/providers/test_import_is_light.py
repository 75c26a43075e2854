"""Importing the providers package and every client opens no socket and reads no key from the environment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

MODULES = [
    "backend.providers",
    "backend.providers.errors",
    "backend.providers.models",
    "backend.providers.http",
    "backend.providers.validation",
    "backend.providers.yahoo",
    "backend.providers.binance",
    "backend.providers.coingecko",
    "backend.providers.alphavantage",
    "backend.providers.coinmarketcap",
    "backend.providers.newsapi",
    "backend.providers.base",
    "backend.providers.simulated",
    "backend.providers.ratelimit",
    "backend.providers.breaker",
    "backend.providers.orchestrator",
    "backend.providers.verdicts",
    "backend.providers.pauses",
    "backend.providers.jsonreply",
    "backend.fake_provider",
]

# Runs in a fresh interpreter so that every import really happens, httpx's included. The guards go
# in before the first import: any connect raises, and every environment read is recorded.
PROBE = r"""
import json, os, socket, sys

def refuse(*args, **kwargs):
    raise AssertionError("socket opened at import time")

socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse

reads = []

class RecordingEnviron(dict):
    def __getitem__(self, key):
        reads.append(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        reads.append(key)
        return super().get(key, default)

    def __contains__(self, key):
        reads.append(key)
        return super().__contains__(key)

os.environ = RecordingEnviron(os.environ)
for name in json.loads(sys.argv[1]):
    __import__(name)
print(json.dumps({"reads": reads, "django": "django" in sys.modules, "celery": "celery" in sys.modules}))
"""


def run_probe(env_extra: dict[str, str] | None = None) -> dict[str, object]:
    root = Path(__file__).resolve().parents[3]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root), **(env_extra or {})}
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(MODULES)],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_importing_every_provider_module_opens_no_socket() -> None:
    result = run_probe()
    assert result["django"] is False
    assert result["celery"] is False


def test_importing_every_provider_module_reads_no_key_from_the_environment() -> None:
    keys = {
        "ALPHA_VANTAGE_API_KEY": "x",
        "COINGECKO_API_KEY": "x",
        "COINMARKETCAP_API_KEY": "x",
        "NEWSAPI_API_KEY": "x",
        "BINANCE_API_KEY": "x",
    }
    reads = run_probe(keys)["reads"]
    assert isinstance(reads, list)
    suspicious = [name for name in reads if any(word in name.upper() for word in ("KEY", "TOKEN", "SECRET"))]
    assert suspicious == []
    assert not any(name in keys for name in reads)
