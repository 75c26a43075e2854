"""Admin for market data: search and filters on every table.

Assets are the operator's to edit. Quotes, bars, indicator snapshots and articles are what the
providers said and the tasks computed: admin shows them (view, search, filter) and never lets a
hand-typed row pass for market data.
"""

from django import forms
from django.contrib import admin
from django.db import models
from django.db.models import Model
from django.http import HttpRequest

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


class ReadOnlyMarketDataAdmin(admin.ModelAdmin):
    """View, search and filter only: no add, change or delete, in forms or as bulk actions."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Quote)
class QuoteAdmin(ReadOnlyMarketDataAdmin):
    list_display = ("asset", "price", "change_24h_pct", "as_of", "source", "fetched_at")
    list_filter = ("source", "asset__asset_type")
    search_fields = ("asset__symbol",)
    list_select_related = ("asset",)


@admin.register(PriceBar)
class PriceBarAdmin(ReadOnlyMarketDataAdmin):
    list_display = ("asset", "interval", "timestamp", "open", "high", "low", "close", "volume", "source")
    list_filter = ("interval", "source", "asset__asset_type")
    search_fields = ("asset__symbol",)
    date_hierarchy = "timestamp"
    list_select_related = ("asset",)


@admin.register(NewsArticle)
class NewsArticleAdmin(ReadOnlyMarketDataAdmin):
    list_display = ("title", "publisher", "published_at", "source")
    list_filter = ("source", "publisher")
    search_fields = ("title", "url", "assets__symbol")
    date_hierarchy = "published_at"
    # The view page still builds a (disabled) form; say the scheme rather than lean on Django's default.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


@admin.register(IndicatorSnapshot)
class IndicatorSnapshotAdmin(ReadOnlyMarketDataAdmin):
    list_display = ("asset", "interval", "as_of", "sma", "ema", "rsi", "macd", "bb_upper", "bb_lower", "computed_at")
    list_filter = ("interval", "asset__asset_type")
    search_fields = ("asset__symbol",)
    date_hierarchy = "as_of"
    list_select_related = ("asset",)
