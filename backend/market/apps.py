from django.apps import AppConfig


class MarketConfig(AppConfig):
    """Market data: assets, quotes, price bars, news and indicators."""

    name = "backend.market"
    label = "market"
    verbose_name = "Market data"

    def ready(self) -> None:
        """Register the ``any_of`` lookup (``backend/market/lookups.py``) on text fields."""
        from . import lookups  # noqa: F401 - importing registers it
