"""Why is this asset slow? Print its market state, volatility, staleness and the routing decision."""

from __future__ import annotations

from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from backend.common.exchange_sessions import UnknownExchangeError
from backend.common.logsafe import escape as safe
from backend.market.models import Asset, Quote
from backend.tasks.quote_plan import conditions_for
from backend.tasks.routing import QuotePolicy, decide


class Command(BaseCommand):
    help = "Explain how quotes of SYMBOL are routed now (or --at a moment): market, volatility, staleness, decision."

    def add_arguments(self, parser):
        parser.add_argument("symbol", help="The asset's symbol, e.g. AAPL or BTC.")
        parser.add_argument(
            "--at",
            help="ISO-8601 moment to evaluate at (UTC when no offset is given), judged by what was stored then; "
            "default: now.",
        )

    def handle(self, *args, **options):
        at = _parse_moment(options["at"]) if options["at"] else timezone.now()
        symbol = options["symbol"].strip().upper()
        asset = Asset.objects.select_related("asset_type").filter(symbol=symbol).first()
        if asset is None:
            raise CommandError(f"no asset with symbol {safe(options['symbol'])!r}")
        # Only the latest quote of an asset is kept: asked about a past moment, a quote fetched after
        # it says nothing about what was stored then, so it is left out and the output says so.
        newer = _quote_fetched_after(asset, at) if options["at"] else None
        try:
            (condition,) = conditions_for([asset], at, stored_by_at=bool(options["at"]))
        except UnknownExchangeError as exc:
            raise CommandError(safe(exc)) from None
        policy = QuotePolicy.from_settings()
        decision = decide([condition], policy)
        staleness = condition.staleness.describe()
        decided = decision.reason
        last_fetch = condition.last_fetched_at.isoformat() if condition.last_fetched_at else "never"
        if newer is not None:
            staleness = (
                f"unknown at {at.isoformat()}: the stored quote is newer (as of {newer.as_of.isoformat()}, "
                f"fetched {newer.fetched_at.isoformat()}) and earlier quotes are not kept"
            )
            decided = f"as if no quote was stored then: {decision.reason}"
            last_fetch = f"none stored by then (the stored quote was fetched {newer.fetched_at.isoformat()})"
        lines = [
            f"{asset.symbol} ({asset.asset_type.code}, exchange {asset.exchange or 'default'}) at {at.isoformat()}",
            f"market:     {condition.clock.describe()}",
            f"volatility: {condition.volatility.describe()}",
            f"staleness:  {staleness}",
            f"last fetch: {last_fetch}",
            f"decision:   {decided}",
        ]
        if not decision.send:
            lines.append(f"run-now:    {decide([condition], policy, run_now=True).reason}")
        if not asset.is_active:
            lines.append("note:       the asset is inactive: no dispatch sends it")
        for line in lines:
            self.stdout.write(safe(line))


def _quote_fetched_after(asset: Asset, at: datetime) -> Quote | None:
    return Quote.objects.filter(asset=asset, fetched_at__gt=at).only("as_of", "fetched_at").first()


def _parse_moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--at wants an ISO-8601 moment such as 2026-11-26T15:00:00Z, not {safe(text)!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
