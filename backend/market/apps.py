from django.apps import AppConfig


class MarketConfig(AppConfig):
    """Market data: assets, quotes, price bars, news and indicators."""

    name = "backend.market"
    label = "market"
    verbose_name = "Market data"
