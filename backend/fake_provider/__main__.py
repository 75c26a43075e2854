"""Command line: ``python -m backend.fake_provider --port 8765`` serves the fake APIs until stopped."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from backend.fake_provider.server import FakeProviderServer
from backend.fake_provider.wire import KEYED_PROVIDERS


def _key_arg(raw: str) -> tuple[str, str]:
    provider, sep, key = raw.partition("=")
    if not sep or provider not in KEYED_PROVIDERS or not key:
        raise argparse.ArgumentTypeError(f"expected PROVIDER=KEY with PROVIDER in {', '.join(KEYED_PROVIDERS)}")
    return provider, key


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m backend.fake_provider",
        description="Serve fake Yahoo/Binance/CoinGecko/Alpha Vantage/CoinMarketCap/NewsAPI on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--log-file", help="append one JSON line per provider request to this file")
    parser.add_argument(
        "--key",
        action="append",
        type=_key_arg,
        default=[],
        metavar="PROVIDER=KEY",
        help="require this API key for a provider (repeatable)",
    )
    parser.add_argument(
        "--unknown",
        action="append",
        default=[],
        metavar="SYMBOL",
        help="treat SYMBOL as unknown (repeatable)",
    )
    parser.add_argument(
        "--fault-rate", type=float, default=0.0, help="fail this share of provider requests at random (0..1)"
    )
    parser.add_argument("--fault-seed", type=int, help="seed for the random faults (repeatable runs)")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    server = FakeProviderServer(
        port=args.port,
        log_file=args.log_file,
        keys=dict(args.key),
        unknown_symbols=args.unknown,
        fault_rate=args.fault_rate,
        fault_seed=args.fault_seed,
    )
    server.start()
    sys.stdout.write(server.url + "\n")
    sys.stdout.flush()
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass  # Ctrl-C is the documented way to stop the CLI
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
