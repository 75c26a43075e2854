"""Backfill price history for active assets, in this process, with a progress bar on a terminal."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.management.base import BaseCommand, CommandError, OutputWrapper
from tqdm import tqdm

from backend.common.logsafe import escape
from backend.market.models import Asset
from backend.market.symbols import InvalidInputError, check_asset_class, check_symbols
from backend.providers.errors import ProviderError
from backend.tasks.backfill import backfill_asset, bars_needed


class _BarStream:
    """The command's stdout as tqdm needs it: no line ending added to each write (tqdm redraws its one
    line with a carriage return; Django's ending turned every redraw into a new line)."""

    def __init__(self, out: OutputWrapper) -> None:
        self._out = out

    def write(self, text: str) -> None:
        self._out.write(text, ending="")

    def flush(self) -> None:
        self._out.flush()


class _ClearBarFirst(logging.Filter):
    """Wipes the bar's line before a log record is written, so a log line never lands on the bar's
    line; the bar is drawn again below it at its next step."""

    def __init__(self, bar: tqdm) -> None:
        super().__init__()
        self._bar = bar

    def filter(self, record: logging.LogRecord) -> bool:
        self._bar.clear()
        return True


@contextmanager
def progress_bar(symbols: list[str], out: OutputWrapper, *, shown: bool) -> Iterator[tqdm]:
    """A bar over ``symbols`` on ``out`` when ``shown`` (a terminal), kept clear of log lines meanwhile."""
    bar = tqdm(symbols, desc="backfill", unit="asset", file=_BarStream(out), disable=not shown, dynamic_ncols=True)
    guard = _ClearBarFirst(bar)
    handlers = list(logging.getLogger().handlers) if shown else []
    for handler in handlers:
        handler.addFilter(guard)
    try:
        yield bar
    finally:
        for handler in handlers:
            handler.removeFilter(guard)
        bar.close()


class Command(BaseCommand):
    help = "Fetch enough bars for the indicators of the given (or all active) assets."

    def add_arguments(self, parser):
        parser.add_argument("symbols", nargs="*", help="Symbols to backfill; default: every active asset.")
        parser.add_argument("--class", dest="asset_class", help="Only assets of this class (stock, crypto).")
        parser.add_argument("--bars", type=int, default=None, help="Bars per asset (default: what indicators need).")

    def handle(self, *args, **options):
        # Checked before any query: a NUL byte would crash PostgreSQL, a CR/LF would forge output lines.
        try:
            requested = check_symbols(options["symbols"])
            asset_class = check_asset_class(options["asset_class"]) if options["asset_class"] is not None else None
        except InvalidInputError as exc:
            raise CommandError(str(exc)) from None
        assets = Asset.objects.refreshable()
        if requested:
            assets = assets.filter(symbol__in=requested)
            missing = set(requested) - set(assets.values_list("symbol", flat=True))
            if missing:
                raise CommandError(f"not active (or quarantined) assets: {', '.join(sorted(missing))}")
        if asset_class:
            assets = assets.of_class(asset_class)
        symbols = list(assets.order_by("symbol").values_list("symbol", flat=True))
        bars = options["bars"] or bars_needed()
        stored = 0
        failed: list[str] = []
        # Only on a terminal: in a pipe or a log file a redrawn bar is a pile of partial lines.
        shown = options["verbosity"] >= 1 and self.stdout.isatty()
        with progress_bar(symbols, self.stdout, shown=shown) as bar:
            for symbol in bar:
                try:
                    stored += backfill_asset(symbol, bars=bars)
                except ProviderError as exc:
                    # One asset's provider fault must not stop the rest; it is reported at the end.
                    failed.append(f"{symbol}: {escape(exc)}")
        self.stdout.write(f"backfilled {stored} bars for {len(symbols) - len(failed)} of {len(symbols)} assets")
        for line in failed:
            self.stderr.write(f"failed {line}")
        if failed:
            raise CommandError(f"{len(failed)} asset(s) failed")
