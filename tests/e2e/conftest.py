"""Browser fixtures of the e2e tests: one Chromium per module, a fresh page per test, the live site."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.chromium import CHROMIUM, CHROMIUM_ARGS, PASSWORD, TIMEOUT_MS, ScreenshotOnFailure


@pytest.fixture(scope="module")
def browser(pytestconfig: pytest.Config) -> Iterator[Browser]:
    """One headless Chromium for all tests of this module.

    Module-scoped, not session-scoped: while Playwright's sync API is up, its event loop counts as
    running in the main thread, which would break ``asyncio.run``/``async_to_sync`` in any later test.
    """
    if not os.access(CHROMIUM, os.X_OK):
        message = f"{CHROMIUM} is missing: browser tests need Debian's Chromium (apt-get install chromium)"
        if os.environ.get("FINANCEHUB_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{message}; CI requires it (.ci/run installs it)", pytrace=False)
        # A developer machine with only Python still passes `make test`; CI never gets here.
        pytest.skip(message)
    plugin = ScreenshotOnFailure()
    pytestconfig.pluginmanager.register(plugin, "admin-browser-screenshots")
    try:
        # Playwright's sync API keeps its asyncio loop in a greenlet of the main thread, so Django's
        # async-safety check sees a "running loop" around every ORM call the tests make. The calls
        # are synchronous and on the main thread; allow them while the browser is up, then restore.
        with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
            patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                yield browser
            finally:
                browser.close()
    finally:
        pytestconfig.pluginmanager.unregister(plugin)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies) per test."""
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def site(live_server, transactional_db) -> str:
    """Base URL of the live server; rows the test commits are visible to it."""
    return live_server.url


@pytest.fixture
def superuser(transactional_db) -> User:
    return User.objects.create_superuser("admin", "admin@example.com", PASSWORD)
