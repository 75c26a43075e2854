"""Bounds: what a dead letter keeps of arguments and messages (``DEADLETTER_KEEP_CHARS``).

A task sent with a 100,000-character argument must not become a 100 KB row, yet a replay needs the
arguments as the task got them. So everything that fits is kept whole, and only what does not fit is
cut, largest part first: a long string loses its tail, a long list its last items. Small values beside
a large one (the asset class beside a huge symbol list, a run id beside a long note) stay intact. The
caller marks the row as cut; nothing inside the value says so, because a replay sends it as it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings

# The most passes a cut may take; each one removes at least one character or item, and a value this
# far over its bound is replaced by its cut text instead (never reached by JSON a task can be sent).
_MAX_PASSES = 10_000


def keep_chars() -> int:
    """The configured bound, read at use time (tests and operators change it)."""
    return int(settings.DEADLETTER_KEEP_CHARS)


def json_size(value: Any) -> int:
    """Characters of ``value`` as compact JSON (what the database stores, give or take spacing)."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str))


@dataclass(frozen=True)
class Bounded:
    """A value cut to a bound: the value, whether anything was cut, and its size before the cut."""

    value: Any
    truncated: bool
    size: int


def bounded(value: Any, limit: int | None = None) -> Bounded:
    """``value`` cut to at most ``limit`` characters of JSON (``DEADLETTER_KEEP_CHARS`` by default)."""
    limit = keep_chars() if limit is None else limit
    size = json_size(value)
    if size <= limit:
        return Bounded(value, False, size)
    current, current_size = value, size
    for _ in range(_MAX_PASSES):
        if current_size <= limit:
            return Bounded(current, True, size)
        smaller = _shrink(current, current_size - limit)
        smaller_size = json_size(smaller)
        if smaller_size >= current_size:
            break
        current, current_size = smaller, smaller_size
    return Bounded(json.dumps(value, default=str)[: max(0, limit - 2)], True, size)


def bounded_text(text: str, limit: int | None = None) -> tuple[str, bool]:
    """``text`` cut to ``limit`` characters, and whether it was."""
    limit = keep_chars() if limit is None else limit
    return (text, False) if len(text) <= limit else (text[:limit], True)


def _shrink(value: Any, excess: int) -> Any:
    """``value`` with about ``excess`` characters of JSON taken off its largest parts."""
    if isinstance(value, str):
        return value[: max(0, len(value) - excess)]
    if isinstance(value, list | tuple):
        return _shrink_items(list(value), excess)
    if isinstance(value, dict):
        # Keys are kept while their values can shrink: a replay without a keyword would change the call.
        keys = list(value)
        kept = dict(zip(keys, _shrink_items([value[k] for k in keys], excess, keep_count=True), strict=True))
        over = json_size(kept) - (json_size(value) - excess)
        for key in reversed(keys):  # what shrinking could not save: the last keywords go
            if over <= 0:
                break
            over -= json_size(key) + json_size(kept.pop(key)) + 2
        return kept
    return value  # a number, bool or None: nothing to cut inside it


def _shrink_items(items: list[Any], excess: int, *, keep_count: bool = False) -> list[Any]:
    """Shrink the largest item while one item dominates; otherwise drop items from the end."""
    sizes = [json_size(item) for item in items]
    total = sum(sizes)
    while excess > 0 and items:
        biggest = max(range(len(items)), key=sizes.__getitem__)
        if keep_count or sizes[biggest] * 2 >= total:
            shrunk = _shrink(items[biggest], min(excess, sizes[biggest]))
            saved = sizes[biggest] - json_size(shrunk)
            if saved <= 0:
                if keep_count:
                    break
                items.pop(biggest)
                excess -= sizes.pop(biggest) + 1
                continue
            items[biggest], sizes[biggest] = shrunk, sizes[biggest] - saved
            excess -= saved
            total -= saved
        else:
            while excess > 0 and items:  # many small items: the last ones go
                total -= sizes[-1]
                excess -= sizes.pop() + 1
                items.pop()
    return items
