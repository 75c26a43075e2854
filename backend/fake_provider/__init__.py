"""A loopback-only fake of the six market-data APIs (a development and test tool), speaking their real wire formats.

The real httpx clients in ``backend/providers`` are pointed at this server in integration
tests, benchmarks and demos, so it follows ``docs/providers.md`` field for field: Binance
prices are strings, Yahoo bars are parallel arrays, Alpha Vantage keys are numbered labels
and its errors come back as HTTP 200, and so on. Standard library only.

URL layout: each provider lives under a path prefix that stands in for its host, so a
client's ``base_url`` is ``server.base_url("binance")`` == ``http://127.0.0.1:PORT/binance``.

==============  ==============================================================================
``/yahoo``         ``/`` and ``/fc`` (sets the ``A3`` cookie), ``/v1/test/getcrumb``,
                   ``/v7/finance/quote``, ``/v8/finance/chart/{symbol}``
``/binance``       ``/api/v3/ticker/price``, ``/api/v3/ticker/24hr``, ``/api/v3/klines``,
                   ``/api/v3/uiKlines``, ``/api/v3/exchangeInfo``, ``/api/v3/ping``, ``/api/v3/time``
``/coingecko``     ``/api/v3/simple/price``, ``/api/v3/coins/markets``, ``/api/v3/coins/list``,
                   ``/api/v3/coins/{id}/market_chart[/range]``, ``/api/v3/ping``
                   (the ``/api/v3`` part is optional: the documented base URL includes it)
``/alphavantage``  ``/query?function=GLOBAL_QUOTE|TIME_SERIES_DAILY|REALTIME_BULK_QUOTES``
``/coinmarketcap`` ``/v1/cryptocurrency/quotes/latest``, ``/v2/cryptocurrency/quotes/latest``,
                   ``/v1/cryptocurrency/map``
``/newsapi``       ``/v2/everything``, ``/v2/top-headlines`` (the ``/v2`` part is optional)
==============  ==============================================================================

Data is generated, not stored: every symbol's level is seeded by a hash of its base asset
(BTC is the same coin on Binance, Yahoo's ``BTC-USD``, CoinGecko's ``bitcoin`` and CMC),
quotes are constant per symbol and bars are a deterministic function of (symbol, bar time),
so the same request gives the same numbers on every run. Pass ``now=`` to freeze the clock
too. Every well-formed symbol is known, except:

* symbols passed as ``unknown_symbols`` (or added later), matched case-insensitively against
  the identifier as sent *or* its base asset (``"BTC"`` hides ``BTCUSDT``, ``BTC-USD``, ...);
* identifiers whose upper-cased form starts with ``UNKNOWN`` or ``ZZZ`` (``ZZZUSDT``,
  ``unknown-coin``), CoinMarketCap numeric ids >= 900000000, and NewsAPI queries containing
  such a word.

Unknown symbols get each API's own answer: Yahoo v7 omits them and chart answers 404,
Binance fails the whole batch with -1121, CoinGecko omits the id (404 on ``/coins/{id}``),
Alpha Vantage answers ``{"Global Quote": {}}`` or an ``Error Message``, CoinMarketCap
answers 400 unless ``skip_invalid=true``, NewsAPI finds zero articles.

Faults are injected per provider (one active fault per provider; setting replaces it) with
``server.set_fault(...)`` or ``POST /_control/faults``; see ``FAULT_KINDS``. Every provider
request is recorded (secret query params masked) in memory and optionally appended as a JSON
line to ``log_file``.

Faults are also drawn at random when the server is given a ``fault_rate`` (``fault_seed`` makes
a run repeatable; ``set_fault_rate`` or ``POST /_control/fault-rate`` at run time). Unknown
symbols can be mixed into any batch (``add_unknown_symbols``); with
``coinmarketcap_skip_invalid=False`` CoinMarketCap fails the whole batch for one of them, as
Binance always does, so clients must isolate them.

Run it by hand with ``python -m backend.fake_provider --port 8765``.

Layout: ``server.py`` (routing, keys, request log) on ``httpd.py`` (the loopback HTTP server),
``control.py`` (``/_control``), ``faults.py`` (fault modes and error replies), ``wire.py`` (shared
request/reply plumbing), ``market.py`` (generated prices) and one module per provider wire format
(Yahoo's ticker rules in ``yahoo_symbols.py``).
"""

from backend.fake_provider.faults import FAULT_KINDS, Fault
from backend.fake_provider.server import FakeProviderServer
from backend.fake_provider.wire import PROVIDERS

__all__ = ["FAULT_KINDS", "PROVIDERS", "Fault", "FakeProviderServer"]
