"""The dashboard's SVG charts: proportional bars, safe labels, readable axes, an honest empty state."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from backend.monitoring.dashboard import charts
from backend.monitoring.dashboard.series import Series, TimeSeries

SVG = "{http://www.w3.org/2000/svg}"
BUCKET = timedelta(minutes=10)


def series(**values: tuple[float, ...]) -> TimeSeries:
    length = len(next(iter(values.values())))
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    starts = tuple(start + i * BUCKET for i in range(length))
    return TimeSeries(starts, BUCKET, tuple(Series(n, v) for n, v in values.items()), "tasks")


def bars(svg: str) -> list[ET.Element]:
    return [r for r in ET.fromstring(svg).iter(f"{SVG}rect") if r.get("class") == "bar"]


def test_bars_stack_in_proportion_and_carry_a_tooltip_each() -> None:
    svg = charts.stacked_bars(series(succeeded=(4, 0, 8), failed=(4, 0, 0)), title="tasks")
    drawn = bars(svg)
    assert len(drawn) == 3  # the empty bucket draws nothing
    heights = [float(r.get("height")) for r in drawn]
    assert heights[0] == heights[1] and abs(heights[2] - 2 * heights[0]) < 0.2
    tips = [r.find(f"{SVG}title").text for r in drawn]
    assert tips[0] == "09:00 UTC, succeeded: 4 tasks" and tips[1] == "09:00 UTC, failed: 4 tasks"
    assert "succeeded (12)" in svg and "failed (4)" in svg  # the legend carries totals


def test_labels_cannot_inject_markup() -> None:
    svg = charts.stacked_bars(series(**{"<script>alert(1)</script>": (1.0,)}), title='a "title" <b>')
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    ET.fromstring(svg)  # still well-formed XML


def test_count_axes_use_whole_steps_and_a_nice_top() -> None:
    assert charts.axis_top(1, whole=True) == 4
    assert charts.axis_top(19, whole=True) == 20
    assert charts.axis_top(130, whole=True) == 200
    assert charts.axis_top(3, whole=False) == 4
    assert charts.axis_top(0.3, whole=False) == 0.4
    labels = re.findall(r'class="tick">([^<]+)<', charts.stacked_bars(series(x=(1.0,)), title="t"))
    assert labels[:5] == ["0", "1", "2", "3", "4"]


def test_hour_labels_mark_the_whole_hours_of_the_window() -> None:
    svg = charts.stacked_bars(series(x=tuple([1.0] * 18)), title="t")  # 09:00 .. 11:50
    assert re.findall(r">(\d\d:\d\d)</text>", svg) == ["09:00", "10:00", "11:00"]


def test_an_empty_window_says_so_instead_of_drawing_nothing() -> None:
    svg = charts.stacked_bars(series(succeeded=(0, 0), failed=(0, 0)), title="t")
    assert bars(svg) == [] and "nothing in this window" in svg
    assert "nothing in this window" in charts.lines(series(worst=(0, 0)), title="t")


def test_lines_join_measured_buckets_and_skip_empty_ones() -> None:
    svg = charts.lines(series(average=(1.0, 0.0, 2.0, 3.0)), title="wait")
    root = ET.fromstring(svg)
    assert len(list(root.iter(f"{SVG}circle"))) == 3
    (line,) = root.iter(f"{SVG}polyline")
    assert len(line.get("points").split()) == 3


def test_known_series_keep_their_colour_and_others_take_distinct_ones() -> None:
    picked = charts.colours(["failed", "quotes.fetch", "indicators.compute", "succeeded"])
    assert picked["failed"] == "#c62828" and picked["succeeded"] == "#2e7d32"
    assert picked["quotes.fetch"] != picked["indicators.compute"]
