"""A pool process builds its quote sources when it starts; a configuration the clients refuse is named,
not fatal to the process (the first fetch raises it again, on the task's own error path)."""

from __future__ import annotations

import logging

import pytest

from backend.tasks import sources


@pytest.fixture(autouse=True)
def fresh_sources():
    sources.reset_sources()
    yield
    sources.reset_sources()


def test_warm_up_builds_the_source_of_every_asset_class(settings) -> None:
    settings.MARKET_DATA_MODE = "fake"
    settings.FAKE_PROVIDER_URL = "http://127.0.0.1:9"
    sources.warm_up()
    assert set(sources._sources) == {"fake:crypto", "fake:stock"}
    assert sources.quote_source("crypto") is sources._sources["fake:crypto"]  # the same one, not rebuilt


def test_a_client_refusing_its_configuration_is_logged_and_raised_by_the_first_fetch(settings, caplog) -> None:
    settings.MARKET_DATA_MODE = "fake"
    settings.FAKE_PROVIDER_URL = "ftp://not-http"
    with caplog.at_level(logging.WARNING, logger="backend.tasks.sources"):
        sources.warm_up()
    assert "quote sources not built at start" in caplog.text and not sources._sources
    with pytest.raises(ValueError, match="absolute http"):
        sources.quote_source("stock")
