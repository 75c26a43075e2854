"""Admin for market data: search and filters on every table.

Assets are the operator's to edit. Quotes, bars, indicator snapshots and articles are what the
providers said and the tasks computed: admin shows them (view, search, filter) and never lets a
hand-typed row pass for market data.
"""

from django import forms
from django.contrib import admin, messages
from django.core.validators import ProhibitNullCharactersValidator
from django.db import models
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from .models import Asset, AssetType, IndicatorSnapshot, NewsArticle, PriceBar, Quote
from .quarantine import clear_quarantine, quarantine, readmit
from .symbols import validate_plain_text


class AssetForm(forms.ModelForm):
    """Asset form that refuses, rather than silently trims, whitespace around a symbol.

    Each refusal names the value, escaped: Django's own "Null characters are not allowed" is replaced
    by a check that also catches CR/LF, ESC and bidi controls.
    """

    class Meta:
        model = Asset
        fields = ["symbol", "name", "asset_type", "exchange", "coingecko_id", "binance_symbol", "is_active"]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["symbol"].strip = False
        for field in self.fields.values():
            if isinstance(field, forms.CharField):
                kept = [v for v in field.validators if not isinstance(v, ProhibitNullCharactersValidator)]
                field.validators = [validate_plain_text, *kept]


@admin.register(AssetType)
class AssetTypeAdmin(admin.ModelAdmin):
    list_display = ("code", "name")
    search_fields = ("code", "name")


class QuarantineFilter(admin.SimpleListFilter):
    """Quarantined (skipped by quote fetches) or not."""

    title = "quarantine"
    parameter_name = "quarantined"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Quarantined"), ("no", "Not quarantined")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Asset]) -> QuerySet[Asset]:
        if self.value() == "yes":
            return queryset.filter(quarantined_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(quarantined_at__isnull=True)
        return queryset


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    form = AssetForm
    list_display = ("symbol", "name", "asset_type", "exchange", "is_active", "quarantined_at", "updated_at")
    list_filter = (QuarantineFilter, "asset_type", "is_active", "exchange")
    search_fields = ("symbol", "name", "coingecko_id", "binance_symbol")
    list_editable = ("is_active",)
    readonly_fields = ("unknown_streak", "quarantined_at", "quarantined_by", "quarantine_reason")
    actions = ("clear_quarantine", "quarantine")

    def save_model(self, request: HttpRequest, obj: Asset, form: forms.ModelForm, change: bool) -> None:
        """An operator's edit re-admits a quarantined asset: they looked at it and changed something."""
        if change and obj.is_quarantined and form.has_changed():
            readmit(obj)
            messages.info(request, f"{obj.symbol} was edited and is no longer quarantined.")
        super().save_model(request, obj, form, change)

    @admin.action(description="Clear quarantine (fetch quotes for them again)")
    def clear_quarantine(self, request: HttpRequest, queryset: QuerySet[Asset]) -> None:
        cleared = clear_quarantine(queryset)
        self.message_user(request, f"{cleared} asset(s) re-admitted; the next refresh fetches them.")

    @admin.action(description="Quarantine (stop fetching quotes for them)")
    def quarantine(self, request: HttpRequest, queryset: QuerySet[Asset]) -> None:
        user = request.user.get_username() if request.user.is_authenticated else "admin"
        count = quarantine(queryset, by=f"admin:{user}", reason="quarantined by hand in the admin")
        self.message_user(request, f"{count} asset(s) quarantined.")


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
