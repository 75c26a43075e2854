"""Why is this asset slow? Print its market state, volatility, staleness and the routing decision."""

from __future__ import annotations

from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from backend.common.exchange_sessions import UnknownExchangeError
from backend.common.logsafe import escape as safe
from backend.market.models import Asset
from backend.tasks.quote_plan import conditions_for
from backend.tasks.routing import QuotePolicy, decide


class Command(BaseCommand):
    help = "Explain how quotes of SYMBOL are routed now (or --at a moment): market, volatility, staleness, decision."

    def add_arguments(self, parser):
        parser.add_argument("symbol", help="The asset's symbol, e.g. AAPL or BTC.")
        parser.add_argument("--at", help="ISO-8601 moment to evaluate at (UTC when no offset is given); default: now.")

    def handle(self, *args, **options):
        at = _parse_moment(options["at"]) if options["at"] else timezone.now()
        symbol = options["symbol"].strip().upper()
        asset = Asset.objects.select_related("asset_type").filter(symbol=symbol).first()
        if asset is None:
            raise CommandError(f"no asset with symbol {safe(options['symbol'])!r}")
        try:
            (condition,) = conditions_for([asset], at)
        except UnknownExchangeError as exc:
            raise CommandError(safe(exc)) from None
        policy = QuotePolicy.from_settings()
        decision = decide([condition], policy)
        lines = [
            f"{asset.symbol} ({asset.asset_type.code}, exchange {asset.exchange or 'default'}) at {at.isoformat()}",
            f"market:     {condition.clock.describe()}",
            f"volatility: {condition.volatility.describe()}",
            f"staleness:  {condition.staleness.describe()}",
            f"last fetch: {condition.last_fetched_at.isoformat() if condition.last_fetched_at else 'never'}",
            f"decision:   {decision.reason}",
        ]
        if not decision.send:
            lines.append(f"run-now:    {decide([condition], policy, run_now=True).reason}")
        if not asset.is_active:
            lines.append("note:       the asset is inactive: no dispatch sends it")
        for line in lines:
            self.stdout.write(safe(line))


def _parse_moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--at wants an ISO-8601 moment such as 2026-11-26T15:00:00Z, not {safe(text)!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
