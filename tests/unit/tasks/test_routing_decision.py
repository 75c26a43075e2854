"""The quote routing decision as a table: open/closed x calm/volatile x fresh/stale x stock/crypto, and beyond."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backend.common.exchange_sessions import market_clock
from backend.market.conditions import AssetCondition, Level, Staleness, Volatility
from backend.tasks.routing import QuotePolicy, Route, WorkKind, decide, plan_routed_batches, route_for

TUESDAY_10_NY = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
SATURDAY_NOON_NY = datetime(2026, 11, 28, 17, 0, tzinfo=UTC)
POLICY = QuotePolicy(close_snapshot_delay=120, after_hours_every=3600, pre_market_every=900)


def condition(
    symbol: str,
    asset_class: str,
    at: datetime,
    *,
    level: Level = Level.CALM,
    stale: bool = False,
    fetched_ago: timedelta | None = timedelta(minutes=1),
) -> AssetCondition:
    exchange = "CRYPTO" if asset_class == "crypto" else "XNYS"
    return AssetCondition(
        symbol=symbol,
        asset_class=asset_class,
        clock=market_clock(exchange, at),
        volatility=Volatility(level),
        staleness=Staleness(stale, 60.0, 600.0),
        last_fetched_at=None if fetched_ago is None else at - fetched_ago,
    )


TABLE = [
    # (market, level, stale, asset class) -> route (None: nothing sent)
    ("open", Level.CALM, False, "stock", Route("high", 3)),
    ("open", Level.CALM, True, "stock", Route("high", 0)),
    ("open", Level.VOLATILE, False, "stock", Route("high", 0)),
    ("open", Level.VOLATILE, True, "stock", Route("high", 0)),
    ("open", Level.CALM, False, "crypto", Route("high", 2)),
    ("open", Level.CALM, True, "crypto", Route("high", 0)),
    ("open", Level.VOLATILE, False, "crypto", Route("high", 0)),
    ("open", Level.VOLATILE, True, "crypto", Route("high", 0)),
    ("closed", Level.CALM, False, "stock", None),
    ("closed", Level.CALM, True, "stock", None),
    ("closed", Level.VOLATILE, False, "stock", None),
    ("closed", Level.VOLATILE, True, "stock", None),
    # A stock-market holiday or weekend is just another day for crypto.
    ("closed", Level.CALM, False, "crypto", Route("high", 2)),
    ("closed", Level.CALM, True, "crypto", Route("high", 0)),
    ("closed", Level.VOLATILE, False, "crypto", Route("high", 0)),
    ("closed", Level.VOLATILE, True, "crypto", Route("high", 0)),
]


@pytest.mark.parametrize(("market", "level", "stale", "asset_class", "route"), TABLE)
def test_the_decision_table(market: str, level: Level, stale: bool, asset_class: str, route: Route | None) -> None:
    at = TUESDAY_10_NY if market == "open" else SATURDAY_NOON_NY
    decision = decide([condition("X", asset_class, at, level=level, stale=stale)], POLICY)
    assert decision.route == route
    assert decision.reason.endswith(f"-> {route.queue}/{route.priority}" if route else "-> none")


def test_the_reason_counts_what_made_the_batch_urgent() -> None:
    batch = [condition(f"V{i}", "stock", TUESDAY_10_NY, level=Level.VOLATILE) for i in range(3)]
    batch += [condition(f"S{i}", "stock", TUESDAY_10_NY, stale=True) for i in range(2)]
    assert decide(batch, POLICY).reason == "stock open, 3 volatile, 2 stale -> high/0"


def test_a_closed_day_says_which_and_sends_nothing_unless_an_operator_asks() -> None:
    thanksgiving = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
    batch = [condition("AAPL", "stock", thanksgiving), condition("MSFT", "stock", thanksgiving)]
    decision = decide(batch, POLICY)
    assert not decision.send
    assert decision.reason == "stock closed day (holiday: Thanksgiving), 2 closed day -> none"
    forced = decide(batch, POLICY, run_now=True)
    assert forced.route == Route("low", 8) and "2 operator run-now" in forced.reason


def test_after_the_close_one_snapshot_then_a_slow_cadence() -> None:
    just_after_close = datetime(2026, 11, 24, 21, 5, tzinfo=UTC)  # 16:05 New York
    fetched_before_close = condition("AAPL", "stock", just_after_close, fetched_ago=timedelta(minutes=6))
    snapshot = decide([fetched_before_close], POLICY)
    assert snapshot.route == Route("medium", 4) and "closing snapshot" in snapshot.reason

    later = just_after_close + timedelta(minutes=5)
    fetched_after_close = condition("AAPL", "stock", later, fetched_ago=timedelta(minutes=5))
    assert decide([fetched_after_close], POLICY).route is None  # the close is in; the cadence is not due
    an_hour_on = condition("AAPL", "stock", later + timedelta(hours=1), fetched_ago=timedelta(hours=1, minutes=5))
    slow = decide([an_hour_on], POLICY)
    assert slow.route == Route("low", 8) and slow.reason == "stock post-market, 1 after-hours cadence -> low/8"


def test_pre_market_has_its_own_cadence() -> None:
    pre_market = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # 07:00 New York
    assert decide([condition("AAPL", "stock", pre_market, fetched_ago=timedelta(minutes=5))], POLICY).route is None
    due = decide([condition("AAPL", "stock", pre_market, fetched_ago=timedelta(minutes=16))], POLICY)
    assert due.route == Route("medium", 5) and "pre-market cadence" in due.reason


def test_an_asset_never_fetched_is_caught_up_outside_the_session() -> None:
    overnight = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)  # 23:00 New York
    decision = decide([condition("NEW", "stock", overnight, fetched_ago=None)], POLICY)
    assert decision.route == Route("medium", 4) and "no quote yet" in decision.reason


def test_volatility_unknown_is_routed_like_calm_and_named() -> None:
    decision = decide([condition("NEW", "crypto", TUESDAY_10_NY, level=Level.UNKNOWN)], POLICY)
    assert decision.route == Route("high", 2) and "1 volatility unknown" in decision.reason


def test_volatile_and_stale_assets_ride_in_an_urgent_batch_of_their_own() -> None:
    calm = [condition(f"C{i}", "crypto", TUESDAY_10_NY) for i in range(5)]
    hot = [
        condition("HOT", "crypto", TUESDAY_10_NY, level=Level.VOLATILE),
        condition("OLD", "crypto", TUESDAY_10_NY, stale=True),
    ]
    batches = plan_routed_batches(calm[:2] + hot + calm[2:], POLICY, batch_size=2)

    assert batches[0].symbols == ("HOT", "OLD") and batches[0].decision.route == Route("high", 0)
    assert [b.symbols for b in batches[1:]] == [("C0", "C1"), ("C2", "C3"), ("C4",)]
    assert all(b.decision.route == Route("high", 2) for b in batches[1:])


def test_assets_not_to_fetch_stay_in_the_plan_with_their_reason() -> None:
    saturday = [condition(f"S{i}", "stock", SATURDAY_NOON_NY) for i in range(3)]
    batches = plan_routed_batches(saturday, POLICY, batch_size=2)
    assert len(batches) == 1 and not batches[0].decision.send and len(batches[0].symbols) == 3
    assert batches[0].decision.reason == "stock closed day (weekend), 3 closed day -> none"


FRIDAY_CLOSE = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)  # the day after Thanksgiving closes at 13:00


@pytest.mark.parametrize(
    ("fetched", "why"),
    [
        (FRIDAY_CLOSE - timedelta(minutes=4), "the last tick before the close"),
        (FRIDAY_CLOSE + timedelta(seconds=30), "after the close, before it settled (the snapshot's delay)"),
    ],
)
def test_a_closed_day_fetches_a_last_close_not_stored_yet_at_low_priority(fetched: datetime | None, why: str) -> None:
    ago = None if fetched is None else SATURDAY_NOON_NY - fetched
    decision = decide([condition("AAPL", "stock", SATURDAY_NOON_NY, fetched_ago=ago)], POLICY)
    assert decision.route == Route("low", 8), why
    assert decision.reason == "stock closed day (weekend), 1 last close not stored yet -> low/8"


def test_a_closed_day_fetches_a_never_quoted_stock_ahead_of_the_backfills_on_any_broker() -> None:
    """A stack first started on a weekend queues a backfill per asset (low) before its first stock fan-out;
    the embedded filesystem broker ignores priorities, so only another queue keeps the first quotes ahead."""
    decision = decide([condition("AAPL", "stock", SATURDAY_NOON_NY, fetched_ago=None)], POLICY)
    assert decision.route == Route("medium", 4)
    assert decision.route.queue != route_for(WorkKind.BACKFILL).queue
    assert decision.reason == "stock closed day (weekend), 1 no quote yet -> medium/4"


def test_a_closed_day_leaves_alone_a_quote_fetched_once_the_close_settled() -> None:
    settled = SATURDAY_NOON_NY - (FRIDAY_CLOSE + timedelta(seconds=POLICY.close_snapshot_delay))
    decision = decide([condition("AAPL", "stock", SATURDAY_NOON_NY, fetched_ago=settled)], POLICY)
    assert decision.route is None and decision.reason == "stock closed day (weekend), 1 closed day -> none"


def test_overnight_the_cadence_stops_once_a_quote_was_fetched_after_extended_trading_ended() -> None:
    monday_1am = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # Monday 01:00 New York: overnight
    fetched_saturday = condition("AAPL", "stock", monday_1am, fetched_ago=timedelta(days=1, hours=20))
    assert decide([fetched_saturday], POLICY).reason == "stock overnight, 1 not due -> none"
    tuesday_night = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # 22:00 New York; post-market ended at 20:00
    during_post_market = condition("AAPL", "stock", tuesday_night, fetched_ago=timedelta(hours=3))
    assert decide([during_post_market], POLICY).reason == "stock overnight, 1 after-hours cadence -> low/8"
    after_post_market = condition("AAPL", "stock", tuesday_night + timedelta(hours=2), fetched_ago=timedelta(hours=3))
    assert decide([after_post_market], POLICY).route is None
