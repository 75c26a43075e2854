"""Dead letters in admin, driven in headless Chromium: filters by any failed provider and by an
exception's base class, columns that fit at 1,400 px, Replay and Discard on the detail page (no
Delete), the replay chain, and the history of every action.

Rows are written the way the worker writes them (``on_task_failure`` with a chain's failure), so
the page shows what an operator sees after a real outage. Replays are caught before the broker:
no worker runs in these tests, so a sent task would only sit in a queue.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from playwright.sync_api import Page, expect

from backend import deadletters
from backend.core.celery import app
from backend.deadletters.models import DeadLetter
from backend.providers.errors import AllProvidersFailedError, PermanentProviderError
from tests.e2e.chromium import PASSWORD, log_in
from tests.fixtures import failing_tasks

pytestmark = pytest.mark.e2e

WIDTH = 1400


@dataclass(frozen=True)
class Failure:
    provider: str
    error: str
    message: str


def capture(task_id: str, exc: BaseException, args: list) -> DeadLetter:
    deadletters.on_task_failure(sender=failing_tasks.always_transient, task_id=task_id, exception=exc, args=args)
    return DeadLetter.objects.get(task_id=task_id)


def stock_outage(task_id: str = "stock-outage-1") -> DeadLetter:
    exc = AllProvidersFailedError(
        "every provider failed for 2 quotes",
        failures=(
            Failure("yahoo", "TransientProviderError", "yahoo: HTTP 503 from http://y.test/v7/finance/quote"),
            Failure("alphavantage", "TransientProviderError", "alphavantage: HTTP 503 from http://a.test/query"),
        ),
    )
    return capture(task_id, exc, ["stock", ["AAPL", "MSFT"]])


def unknown_coin() -> DeadLetter:
    return capture("crypto-unknown-1", PermanentProviderError("unknown symbol NOPE", provider="coingecko"), ["NOPE"])


@pytest.fixture
def sends(monkeypatch) -> list[dict]:
    """Tasks the admin sent (the live server runs in this process, so the patch reaches it)."""
    calls: list[dict] = []
    monkeypatch.setattr(app, "send_task", lambda name, args=None, kwargs=None, **o: calls.append({"name": name, **o}))
    return calls


def open_changelist(page: Page, site: str, query: str = "") -> None:
    page.set_viewport_size({"width": WIDTH, "height": 900})
    page.goto(site + reverse("admin:deadletters_deadletter_changelist") + query)


def test_filters_by_any_failed_provider_and_by_a_base_exception(page: Page, site: str, superuser: User) -> None:
    stock_outage()
    unknown_coin()
    log_in(page, site, "admin")
    open_changelist(page, site)

    sidebar = page.locator("#changelist-filter")
    expect(sidebar).to_contain_text("By provider that failed")
    expect(sidebar).to_contain_text("By exception (and subclasses)")
    sidebar.get_by_role("link", name="alphavantage", exact=True).click()
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    expect(page.locator("#result_list tbody td.field-provider_text")).to_have_text("yahoo, alphavantage")
    expect(page.locator("#result_list tbody td.field-exception_short")).to_have_text("AllProvidersFailedError")

    open_changelist(page, site)
    page.locator("#changelist-filter").get_by_role("link", name="TransientProviderError", exact=True).click()
    expect(page).to_have_url(re.compile(r"exception=TransientProviderError"))
    expect(page.locator("#result_list tbody tr")).to_have_count(1)  # the subclass row, not the permanent one
    page.locator("#changelist-filter").get_by_role("link", name="ProviderError", exact=True).click()
    expect(page.locator("#result_list tbody tr")).to_have_count(2)


def test_list_columns_fit_at_1400_px_without_clipping(page: Page, site: str, superuser: User, sends) -> None:
    first = stock_outage()
    deadletters.replay(first, actor="admin:admin")  # a replay task id in the last column
    unknown_coin()
    log_in(page, site, "admin")
    open_changelist(page, site)

    expect(page.locator("#result_list tbody tr")).to_have_count(2)
    results = page.locator("#changelist-form .results")
    overflow = results.evaluate("el => el.scrollWidth - el.clientWidth")
    assert overflow <= 0, f"the list needs {overflow}px of horizontal scrolling at {WIDTH}px"
    for column in ("last_failure", "replay_link", "state_text"):
        clipped = page.locator(f"#result_list td.field-{column}").evaluate_all(
            "cells => cells.filter(c => c.scrollWidth > c.clientWidth).length"
        )
        assert clipped == 0, f"column {column} is clipped"
    expect(page.locator("#result_list td.field-last_failure").first).to_have_text(
        re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d$")
    )


def test_detail_page_replays_and_keeps_the_history(page: Page, site: str, superuser: User, sends) -> None:
    row = stock_outage()
    log_in(page, site, "admin")
    page.goto(site + reverse("admin:deadletters_deadletter_change", args=[row.pk]))

    expect(page.locator(".field-provider_failures_block")).to_contain_text("yahoo")
    expect(page.locator(".field-provider_failures_block")).to_contain_text("alphavantage")
    expect(page.locator(".field-lineage_text")).to_contain_text("AllProvidersFailedError < TransientProviderError")
    expect(page.get_by_role("link", name="Delete")).to_have_count(0)
    expect(page.locator("input[value=Discard]")).to_be_visible()
    expect(page.locator(".field-replay_warning_text .readonly")).to_have_text("-")  # nothing to replay, no warning
    page.locator("input[value=Replay]").click()

    expect(page.locator("ul.messagelist .success")).to_contain_text("Replayed as task")
    expect(page.locator(".field-state")).to_contain_text("replayed (running)")
    expect(page.locator("input[value=Replay]")).to_have_count(0)
    history = page.locator("#actions-group")
    expect(history).to_contain_text("admin:admin")
    expect(history.locator("tbody tr").first).to_contain_text("replay")
    expect(history.locator("tbody tr").first).to_contain_text("sent")
    assert [s["name"] for s in sends] == ["tests.always_transient"]


def test_detail_page_discards_and_the_history_names_who(page: Page, site: str, superuser: User) -> None:
    row = unknown_coin()
    log_in(page, site, "admin")
    page.goto(site + reverse("admin:deadletters_deadletter_change", args=[row.pk]))
    page.locator("input[value=Discard]").click()

    expect(page.locator("ul.messagelist .success")).to_contain_text("Discarded")
    expect(page.locator(".field-state")).to_contain_text("discarded")
    expect(page.locator("#actions-group tbody tr").first).to_contain_text("discard")
    expect(page.locator("#actions-group tbody tr").first).to_contain_text("admin:admin")
    row.refresh_from_db()
    assert row.state == DeadLetter.State.DISCARDED and row.discarded_by == "admin:admin"


def test_the_replay_chain_links_both_ways_and_marks_the_original(page: Page, site: str, superuser: User, sends) -> None:
    original = stock_outage("stock-outage-orig")
    deadletters.replay(original, actor="admin:admin")
    again = stock_outage(sends[0]["task_id"])  # the replay failed the same way
    log_in(page, site, "admin")

    page.goto(site + reverse("admin:deadletters_deadletter_change", args=[again.pk]))
    chain = page.locator("ol.replay-chain li")
    expect(chain).to_have_count(2)
    expect(chain.nth(0)).to_contain_text("replay failed again")
    expect(chain.nth(1)).to_contain_text("open")
    expect(chain.nth(1)).to_have_class("current")
    chain.nth(0).get_by_role("link").click()

    expect(page).to_have_url(re.compile(rf"/{original.pk}/change/$"))
    expect(page.locator(".field-state")).to_contain_text("replay failed again")
    history = page.locator("#actions-group tbody")
    expect(history).to_contain_text("sent")
    expect(history).to_contain_text("failed again")
    open_changelist(page, site)
    expect(page.locator(f"#result_list a:text('failed as #{again.pk}')")).to_be_visible()


def test_a_viewer_sees_no_action_buttons(page: Page, site: str, transactional_db) -> None:
    row = stock_outage()
    viewer = User.objects.create_user("viewer", password=PASSWORD, is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_deadletter"))
    log_in(page, site, "viewer")
    page.goto(site + reverse("admin:deadletters_deadletter_change", args=[row.pk]))

    expect(page.locator(".field-provider_failures_block")).to_contain_text("yahoo")
    expect(page.locator("input[value=Replay]")).to_have_count(0)
    expect(page.locator("input[value=Discard]")).to_have_count(0)
    expect(page.locator(".deadletter-no-actions")).to_contain_text("may not replay or discard")


def test_a_row_with_cut_arguments_is_replayed_through_a_confirmation(page: Page, site: str, superuser: User, sends):
    deadletters.on_task_failure(sender=failing_tasks.always_transient, task_id="huge-1",
                                exception=ValueError("not a symbol"), args=["stock", ["A" * 100_000]])  # fmt: skip
    row = DeadLetter.objects.get(task_id="huge-1")
    log_in(page, site, "admin")
    open_changelist(page, site)
    expect(page.locator("#result_list td.field-state_text")).to_have_text("open (arguments cut)")
    expect(page.locator("#result_list td.field-exception_short")).to_contain_text("(permanent)")

    page.goto(site + reverse("admin:deadletters_deadletter_change", args=[row.pk]))
    expect(page.locator(".field-truncation_note")).to_contain_text("of 100,0")
    expect(page.locator(".deadletter-replay-warning")).to_contain_text("will fail the same way")
    page.locator("input[value=Replay]").click()

    expect(page.locator("h1")).to_have_text("Replay with cut arguments?")
    expect(page.locator(".deadletter-replay-confirmation table")).to_contain_text(f"#{row.pk}")
    assert sends == []
    page.get_by_role("button", name="Yes, replay with the cut arguments").click()

    expect(page.locator("ul.messagelist .success")).to_contain_text("Replayed as task")
    expect(page.locator("ul.messagelist .warning")).to_contain_text("will fail the same way unless its cause")
    expect(page.locator("#actions-group tbody tr").first).to_contain_text("truncated arguments, confirmed")
    assert [s["task_id"] for s in sends] == [DeadLetter.objects.get(pk=row.pk).replay_task_id]


def test_a_discarded_message_shows_as_it_arrived_and_offers_discard_only(page: Page, site: str, superuser: User):
    from kombu.exceptions import ContentDisallowed
    from kombu.message import Message

    message = Message(body=b"\x80\x04\x95 pickled", delivery_tag="tag-1", content_type="application/x-python-serialize",
                      content_encoding="binary", delivery_info={"exchange": "high", "routing_key": "high"},
                      headers={"task": "quotes.fetch", "id": "pickled-1"})  # fmt: skip
    refused = ContentDisallowed("Refusing to deserialize untrusted content of type pickle")
    deadletters.on_task_rejected(message=message, exc=refused)
    row = DeadLetter.objects.get(task_id="pickled-1")
    log_in(page, site, "admin")
    page.goto(site + reverse("admin:deadletters_deadletter_change", args=[row.pk]))

    expect(page.locator(".field-origin")).to_contain_text("message rejected")
    expect(page.locator(".field-message_block")).to_contain_text("application/x-python-serialize")
    expect(page.locator(".field-message_block")).to_contain_text("\\x80\\x04\\x95 pickled")
    expect(page.locator("input[value=Replay]")).to_have_count(0)
    expect(page.locator("input[value=Discard]")).to_be_visible()
    expect(page.locator(".field-replay_warning_text .readonly")).to_have_text("-")  # nothing to replay, no warning
