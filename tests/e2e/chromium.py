"""Headless Chromium for the browser tests: where it is, how it starts, screenshots, the admin login.

The browser is Debian's ``chromium`` (/usr/bin/chromium; ``.ci/run`` installs it), launched through
Playwright's bundled driver: Playwright's own browser download is never used. The fixtures that use
these (``browser``, ``page``, ``site``, ``superuser``) are in this folder's conftest.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from playwright.sync_api import Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # required as root
    "--disable-gpu",
    # Keep Chromium off the network: no update checks, no sync, no first-run fetches.
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
TIMEOUT_MS = 15_000
PASSWORD = "correct horse battery staple"
SCREENSHOT_DIR = Path(settings.VAR_DIR).resolve() / "screenshots"


class ScreenshotOnFailure:
    """Pytest plugin (registered while the browser is up): screenshot the page of a failed test."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
        report = yield
        page = getattr(item, "funcargs", {}).get("page")
        if report.when == "call" and report.failed and page is not None and not page.is_closed():
            SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
            path = SCREENSHOT_DIR / (re.sub(r"[^\w.-]+", "_", item.name) + ".png")
            try:
                page.screenshot(path=str(path), full_page=True)
                note = f"screenshot of {page.url}: {path}"
            except Exception as exc:  # noqa: BLE001 - a failed screenshot must not hide the test's failure
                note = f"no screenshot ({type(exc).__name__}: {exc})"
            report.sections.append(("browser", note))
        return report


def log_in(page: Page, site: str, username: str, password: str = PASSWORD) -> None:
    """Sign in through the admin login form."""
    page.goto(site + reverse("admin:login"))
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
