"""Worker start-up: what the main process and each pool process build, then keep out of the collector."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from backend.stack import celery as celery_app


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the test process goes on collecting everything, as before


def test_a_pool_process_freezes_what_its_start_up_built(unfrozen, settings) -> None:
    settings.MARKET_DATA_MODE = "simulated"
    celery_app.build_quote_sources()
    frozen = gc.get_freeze_count()
    assert frozen > 10_000  # the modules, settings and clients of a started process
    assert not any(gc.get_objects(generation) for generation in (1, 2))  # nothing left to walk but new objects


def test_the_main_process_builds_the_calendars_and_freezes_them_before_the_fork(unfrozen) -> None:
    celery_app.build_exchange_calendars()
    assert gc.get_freeze_count() > 10_000
    assert gc.get_objects(2) == []
