"""Charts drawn as SVG text on the server: they render offline, print, and need no script.

Two kinds: stacked bars (counts per bucket) and lines (a measure per bucket). Every label is
XML-escaped, so a task name cannot inject markup; each bar carries a ``<title>`` tooltip with its
bucket and value. No Django here: series in, markup out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from .series import Series, TimeSeries

# Colours people read without a legend: green good, red bad, amber in between, grey unknown.
KNOWN_COLOURS = {
    "succeeded": "#2e7d32",
    "done": "#2e7d32",
    "failed": "#c62828",
    "retrying": "#f9a825",
    "revoked": "#6d4c41",
    "other": "#9e9e9e",
    "missing": "#9e9e9e",
    "average": "#1565c0",
    "worst": "#c62828",
}
# For names without a fixed colour (task names of dead letters), in order of appearance.
CYCLE = ("#6a1b9a", "#00838f", "#ef6c00", "#283593", "#ad1457", "#558b2f", "#4e342e", "#37474f")
LEFT, RIGHT, TOP, BOTTOM, LEGEND = 46, 10, 20, 22, 22
GRID_LINES = 4


def colours(names: Sequence[str]) -> dict[str, str]:
    """A colour per series name: the fixed ones first, then the cycle."""
    picked: dict[str, str] = {}
    spare = iter(CYCLE * (1 + len(names) // len(CYCLE)))
    for name in names:
        picked[name] = KNOWN_COLOURS.get(name) or next(spare)
    return picked


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``value`` (1 for nothing)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def axis_top(highest: float, *, whole: bool) -> float:
    """The y-axis maximum: a nice step per gridline (a whole one for counts) times the gridlines."""
    step = nice_ceiling(highest / GRID_LINES)
    if whole:
        step = max(1.0, math.ceil(step))
    return step * GRID_LINES


def _number(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}" if value == int(value) else f"{value:.1f}"


def _frame(ts: TimeSeries, title: str, width: int, height: int, top: float) -> list[str]:
    """Open the SVG; draw gridlines, y labels and hourly x labels."""
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM - LEGEND
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for i in range(GRID_LINES + 1):
        y = TOP + plot_h - plot_h * i / GRID_LINES
        parts.append(f'<line x1="{LEFT}" x2="{width - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        label = _number(top * i / GRID_LINES)
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{label}</text>')
    slot = plot_w / max(len(ts.starts), 1)
    hours = len(ts.starts) * ts.bucket.total_seconds() / 3600
    every = max(1, math.ceil(hours / 8))  # at most about eight hour labels
    for i, start in enumerate(ts.starts):
        if start.minute == 0 and start.second == 0 and start.hour % every == 0:
            x = LEFT + slot * i
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{TOP + plot_h}" class="hour"/>')
            parts.append(
                f'<text x="{x:.1f}" y="{TOP + plot_h + 15}" text-anchor="middle" class="tick">{start:%H:%M}</text>'
            )
    return parts


def _legend(series: Sequence[Series], palette: dict[str, str], height: int, unit: str, totals: bool) -> list[str]:
    parts, x = [], float(LEFT)
    for s in series:
        text = f"{s.name} ({_number(s.total)})" if totals else s.name
        parts.append(f'<rect x="{x:.0f}" y="{height - 14}" width="10" height="10" fill="{palette[s.name]}"/>')
        parts.append(f'<text x="{x + 14:.0f}" y="{height - 5}" class="legend">{escape(text)}</text>')
        x += 26 + 6.5 * len(text)
    if unit:
        parts.append(f'<text x="4" y="{TOP - 8}" class="unit">{escape(unit)}</text>')
    return parts


def _no_data(parts: list[str], width: int, height: int) -> None:
    y = (height - LEGEND) / 2
    parts.append(
        f'<text x="{width / 2:.0f}" y="{y:.0f}" text-anchor="middle" class="empty">nothing in this window</text>'
    )


def stacked_bars(ts: TimeSeries, *, title: str, width: int = 640, height: int = 190) -> str:
    """One bar per bucket, its series stacked bottom-up, with a legend of totals."""
    series = [s for s in ts.series if s.total > 0] or list(ts.series)
    palette = colours([s.name for s in series])
    stack_tops = [sum(s.values[i] for s in series) for i in range(len(ts.starts))]
    top = axis_top(max(stack_tops, default=0), whole=True)
    parts = _frame(ts, title, width, height, top)
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM - LEGEND
    slot = plot_w / max(len(ts.starts), 1)
    bar_w = max(1.0, slot * 0.8)
    for i, start in enumerate(ts.starts):
        base = TOP + plot_h
        for s in series:
            value = s.values[i]
            if value <= 0:
                continue
            h = plot_h * value / top
            base -= h
            tip = f"{start:%H:%M} UTC, {s.name}: {_number(value)} {ts.unit}"
            parts.append(
                f'<rect x="{LEFT + slot * i + (slot - bar_w) / 2:.1f}" y="{base:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{palette[s.name]}" class="bar"><title>{escape(tip)}</title></rect>'
            )
    if ts.empty:
        _no_data(parts, width, height)
    parts += _legend(series, palette, height, ts.unit, totals=True)
    parts.append("</svg>")
    return "".join(parts)


def lines(ts: TimeSeries, *, title: str, width: int = 640, height: int = 190) -> str:
    """One polyline per series; buckets without a value are gaps, each point has a tooltip."""
    palette = colours([s.name for s in ts.series])
    top = axis_top(max((v for s in ts.series for v in s.values), default=0), whole=False)
    parts = _frame(ts, title, width, height, top)
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM - LEGEND
    slot = plot_w / max(len(ts.starts), 1)
    for s in ts.series:
        points = []
        for i, value in enumerate(s.values):
            if value <= 0:
                continue
            x, y = LEFT + slot * (i + 0.5), TOP + plot_h - plot_h * value / top
            points.append(f"{x:.1f},{y:.1f}")
            tip = f"{ts.starts[i]:%H:%M} UTC, {s.name}: {_number(value)} {ts.unit}"
            dot = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{palette[s.name]}">'
            parts.append(f"{dot}<title>{escape(tip)}</title></circle>")
        if len(points) > 1:
            parts.append(
                f'<polyline points="{" ".join(points)}" fill="none" stroke="{palette[s.name]}" stroke-width="1.5"/>'
            )
    if ts.empty:
        _no_data(parts, width, height)
    parts += _legend(ts.series, palette, height, ts.unit, totals=False)
    parts.append("</svg>")
    return "".join(parts)
