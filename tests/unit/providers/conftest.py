"""Fixtures for provider tests; the fakes themselves live in ``fakes.py``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from tests.unit.providers.fakes import FIXED_NOW, FakeApi


@pytest.fixture
def fake() -> FakeApi:
    """A fresh fake API on https://api.test."""
    return FakeApi()


@pytest.fixture
def clock() -> Callable[[], datetime]:
    """A clock frozen at ``FIXED_NOW``."""
    return lambda: FIXED_NOW
