"""Admin for market data: search and filters on every table."""

from django import forms
from django.contrib import admin

from .models import Asset, AssetType, IndicatorSnapshot, NewsArticle, PriceBar, Quote


class AssetForm(forms.ModelForm):
    """Asset form that refuses, rather than silently trims, whitespace around a symbol."""

    class Meta:
        model = Asset
        fields = ["symbol", "name", "asset_type", "exchange", "coingecko_id", "binance_symbol", "is_active"]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["symbol"].strip = False


@admin.register(AssetType)
class AssetTypeAdmin(admin.ModelAdmin):
    list_display = ("code", "name")
    search_fields = ("code", "name")


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    form = AssetForm
    list_display = ("symbol", "name", "asset_type", "exchange", "is_active", "updated_at")
    list_filter = ("asset_type", "is_active", "exchange")
    search_fields = ("symbol", "name", "coingecko_id", "binance_symbol")
    list_editable = ("is_active",)


@admin.register(Quote)
class QuoteAdmin(admin.ModelAdmin):
    list_display = ("asset", "price", "change_24h_pct", "as_of", "source", "fetched_at")
    list_filter = ("source", "asset__asset_type")
    search_fields = ("asset__symbol",)
    list_select_related = ("asset",)


@admin.register(PriceBar)
class PriceBarAdmin(admin.ModelAdmin):
    list_display = ("asset", "interval", "timestamp", "open", "high", "low", "close", "volume", "source")
    list_filter = ("interval", "source", "asset__asset_type")
    search_fields = ("asset__symbol",)
    date_hierarchy = "timestamp"
    list_select_related = ("asset",)


@admin.register(NewsArticle)
class NewsArticleAdmin(admin.ModelAdmin):
    list_display = ("title", "publisher", "published_at", "source")
    list_filter = ("source", "publisher")
    search_fields = ("title", "url", "assets__symbol")
    date_hierarchy = "published_at"
    filter_horizontal = ("assets",)


@admin.register(IndicatorSnapshot)
class IndicatorSnapshotAdmin(admin.ModelAdmin):
    list_display = ("asset", "interval", "as_of", "sma", "ema", "rsi", "macd", "bb_upper", "bb_lower", "computed_at")
    list_filter = ("interval", "asset__asset_type")
    search_fields = ("asset__symbol",)
    date_hierarchy = "as_of"
    list_select_related = ("asset",)
