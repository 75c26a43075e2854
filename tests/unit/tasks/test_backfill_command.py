"""`manage.py backfill` fills history for the chosen assets and reports what it could not."""

from __future__ import annotations

import io
import logging

import pytest
from django.core.management import CommandError, call_command

from backend.market.models import PriceBar

pytestmark = pytest.mark.django_db


class Terminal(io.StringIO):
    """What a terminal receives: the command's output and the log lines, on one screen."""

    def isatty(self) -> bool:
        return True

    def screen(self) -> list[str]:
        """The lines a terminal shows: a carriage return moves back to the start of the line."""
        lines, line, column = [], "", 0
        for char in self.getvalue():
            if char == "\n":
                lines.append(line.rstrip())
                line, column = "", 0
            elif char == "\r":
                column = 0
            else:
                line = line[:column] + char + line[column + 1 :]
                column += 1
        return [*lines, line.rstrip()] if line.strip() else lines


def test_it_backfills_the_named_assets(make_asset, capsys) -> None:
    make_asset("AAPL")
    make_asset("MSFT")
    call_command("backfill", "AAPL", "--bars", "40")
    out, err = capsys.readouterr()
    assert out == "backfilled 40 bars for 1 of 1 assets\n"  # not a terminal: no bar to redraw
    assert "backfill:" not in err
    assert PriceBar.objects.filter(asset__symbol="AAPL").count() == 40
    assert not PriceBar.objects.filter(asset__symbol="MSFT").exists()


def test_on_a_terminal_the_bar_goes_to_stdout_plain_once_and_never_shares_a_line_with_a_log_line(make_asset) -> None:
    for symbol in ("AAPL", "MSFT", "NVDA"):
        make_asset(symbol)
    terminal = Terminal()
    handler = logging.StreamHandler(terminal)  # the log lines land on the same screen, as in a shell
    handler.setFormatter(logging.Formatter("LOG %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    previous_level = root.level
    root.setLevel(logging.INFO)
    try:
        call_command("backfill", "--bars", "30", stdout=terminal, stderr=io.StringIO())
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)

    screen = terminal.screen()
    assert "\x1b[" not in terminal.getvalue()  # no colour: it is not an error
    assert [line for line in screen if "100%" in line] == [screen[-2]]  # the finished bar, once
    assert screen[-2].startswith("backfill: 100%") and "3/3" in screen[-2]
    assert screen[-1] == "backfilled 90 bars for 3 of 3 assets"
    logged = [line for line in screen if "LOG " in line]
    assert len(logged) == 3 and all(line.startswith("LOG backfilled 30 1d bars for ") for line in logged)


def test_it_backfills_every_active_asset_of_a_class_by_default(make_asset, capsys) -> None:
    make_asset("AAPL")
    make_asset("BTC", "crypto")
    make_asset("IBM", is_active=False)
    call_command("backfill", "--class", "stock", "--bars", "35")
    assert set(PriceBar.objects.values_list("asset__symbol", flat=True)) == {"AAPL"}


def test_it_refuses_symbols_that_are_not_active_assets(make_asset) -> None:
    make_asset("IBM", is_active=False)
    with pytest.raises(CommandError, match=r"not active \(or quarantined\) assets: IBM, NOPE"):
        call_command("backfill", "IBM", "NOPE")
