"""Retry delays stay within [floor, cap] and honour a provider's Retry-After."""

from __future__ import annotations

import pytest

from backend.tasks.policy import retry_delay


@pytest.mark.parametrize("computed", [0, 0.1, 1.9])
def test_a_full_jitter_draw_near_zero_is_raised_to_the_floor(computed: float) -> None:
    assert retry_delay(computed, retry_after=None, floor=2, cap=600) == 2


def test_a_delay_between_floor_and_cap_is_kept() -> None:
    assert retry_delay(37.5, retry_after=None, floor=2, cap=600) == 37.5


def test_a_longer_retry_after_wins_over_the_backoff() -> None:
    assert retry_delay(4, retry_after=30, floor=2, cap=600) == 30


def test_a_shorter_retry_after_does_not_shorten_the_backoff() -> None:
    assert retry_delay(40, retry_after=5, floor=2, cap=600) == 40


def test_nothing_waits_past_the_cap() -> None:
    assert retry_delay(5000, retry_after=86400, floor=2, cap=600) == 600
