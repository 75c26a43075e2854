"""Market data tables: what we track and the latest facts about it.

The database holds the invariants (CHECK constraints), because bulk upserts skip
model validation: a NaN, a negative price or a bar whose high is below its low is
refused by the database whichever code path writes it.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from backend.common.exchange_sessions import KNOWN_EXCHANGES, UnknownExchangeError, normalise_exchange

from .symbols import (
    PROVIDER_ID_PATTERN,
    SYMBOL_PATTERN,
    validate_plain_text,
    validate_provider_id,
    validate_symbol,
)

# PostgreSQL orders NaN above every number, so `value < CEILING` refuses NaN where a plain
# `value > 0` would let it through; SQLite stores NaN as NULL, which NOT NULL refuses.
PRICE_CEILING = Decimal("1e12")
VOLUME_CEILING = Decimal("1e20")


def validate_exchange(code: str) -> None:
    """Refuse an exchange code no calendar is known for, naming the known ones (blank means the default)."""
    if code and code != code.strip().upper():
        raise ValidationError("Exchange codes are upper-case, e.g. XNYS.", code="invalid_exchange")
    try:
        normalise_exchange(code)
    except UnknownExchangeError as exc:
        raise ValidationError(str(exc), code="unknown_exchange") from exc


def _finite_positive(field: str) -> Q:
    return Q(**{f"{field}__gt": 0, f"{field}__lt": PRICE_CEILING})


def _finite_non_negative(field: str, ceiling: Decimal = VOLUME_CEILING) -> Q:
    return Q(**{f"{field}__gte": 0, f"{field}__lt": ceiling})


class AssetType(models.Model):
    """A class of asset (stock, crypto, ...) as a row, so new classes need no deploy."""

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=64)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class ActiveAssetQuerySet(models.QuerySet["Asset"]):
    def active(self) -> ActiveAssetQuerySet:
        """Assets that schedules should keep fresh."""
        return self.filter(is_active=True)

    def of_class(self, asset_class: str) -> ActiveAssetQuerySet:
        """Assets of one asset type code (``stock``, ``crypto``)."""
        return self.filter(asset_type__code=asset_class)

    def refreshable(self) -> ActiveAssetQuerySet:
        """Active assets that are not quarantined: the ones quote fetches and backfills serve."""
        return self.active().filter(quarantined_at__isnull=True)

    def quarantined(self) -> ActiveAssetQuerySet:
        """Assets set aside because every provider kept reporting them unknown."""
        return self.filter(quarantined_at__isnull=False)


class Asset(models.Model):
    """A tradable instrument whose data the platform keeps fresh while it is active."""

    symbol = models.CharField(max_length=20, unique=True, validators=[validate_symbol])
    name = models.CharField(max_length=200, blank=True, validators=[validate_plain_text])
    asset_type = models.ForeignKey(AssetType, on_delete=models.PROTECT, related_name="assets")
    exchange = models.CharField(
        max_length=32,
        blank=True,
        validators=[validate_exchange],
        help_text="Exchange calendar code: XNYS (the default when blank), XNAS, or CRYPTO (always open).",
    )
    coingecko_id = models.CharField(
        max_length=64, blank=True, validators=[validate_provider_id], help_text="e.g. bitcoin"
    )
    binance_symbol = models.CharField(
        max_length=20, blank=True, validators=[validate_symbol], help_text="Trading pair, e.g. BTCUSDT"
    )
    is_active = models.BooleanField(default=True, db_index=True)
    # Quarantine: a symbol every provider of its chain reported unknown QUARANTINE_AFTER_UNKNOWN
    # refreshes in a row is no longer fetched (it would burn scarce fallback quota forever) until an
    # operator clears it or edits the asset (backend/market/quarantine.py).
    unknown_streak = models.PositiveIntegerField(
        default=0, help_text="Refreshes in a row in which every provider reported the symbol unknown."
    )
    quarantined_at = models.DateTimeField(null=True, blank=True, db_index=True)
    quarantined_by = models.CharField(max_length=64, blank=True, help_text="What set it aside (a task or a user).")
    quarantine_reason = models.CharField(max_length=300, blank=True, help_text="The last provider verdict.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ActiveAssetQuerySet.as_manager()

    class Meta:
        ordering = ["symbol"]
        constraints = [
            models.CheckConstraint(condition=Q(symbol__regex=SYMBOL_PATTERN), name="asset_symbol_pattern"),
            models.CheckConstraint(
                condition=Q(coingecko_id="") | Q(coingecko_id__regex=PROVIDER_ID_PATTERN),
                name="asset_coingecko_id_pattern",
            ),
            models.CheckConstraint(
                condition=Q(binance_symbol="") | Q(binance_symbol__regex=SYMBOL_PATTERN),
                name="asset_binance_symbol_pattern",
            ),
            # Bulk upserts skip validators: an unknown code must not reach the market calendar.
            models.CheckConstraint(
                condition=Q(exchange__in=["", *sorted(KNOWN_EXCHANGES)]), name="asset_exchange_known"
            ),
        ]

    def __str__(self) -> str:
        return self.symbol

    @property
    def is_quarantined(self) -> bool:
        """Whether quote fetches skip this asset."""
        return self.quarantined_at is not None


class Quote(models.Model):
    """The latest quote of an asset: one row per asset, upserted on every fetch."""

    asset = models.OneToOneField(Asset, on_delete=models.CASCADE, related_name="quote", primary_key=True)
    price = models.DecimalField(max_digits=24, decimal_places=8)
    change_24h_pct = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    volume_24h = models.DecimalField(max_digits=32, decimal_places=8, null=True, blank=True)
    currency = models.CharField(max_length=8, default="USD")
    as_of = models.DateTimeField(help_text="When the provider priced it.")
    source = models.CharField(max_length=32, help_text="The provider that served it.")
    fetched_at = models.DateTimeField(help_text="When we stored it.")

    class Meta:
        ordering = ["asset__symbol"]
        constraints = [
            models.CheckConstraint(condition=_finite_positive("price"), name="quote_price_finite_positive"),
            models.CheckConstraint(
                condition=Q(volume_24h__isnull=True) | _finite_non_negative("volume_24h"),
                name="quote_volume_finite_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(change_24h_pct__isnull=True)
                | Q(change_24h_pct__gt=Decimal("-100.0001"), change_24h_pct__lt=Decimal("1e7")),
                name="quote_change_finite",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.asset_id} {self.price}"


class PriceBar(models.Model):
    """One OHLCV bar; (asset, interval, timestamp) is its natural key."""

    class Interval(models.TextChoices):
        MINUTE_5 = "5m", "5 minutes"
        HOUR_1 = "1h", "1 hour"
        DAY_1 = "1d", "1 day"

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="bars")
    interval = models.CharField(max_length=4, choices=Interval.choices)
    timestamp = models.DateTimeField(help_text="Bar open time, UTC, floored to the interval.")
    open = models.DecimalField(max_digits=24, decimal_places=8)
    high = models.DecimalField(max_digits=24, decimal_places=8)
    low = models.DecimalField(max_digits=24, decimal_places=8)
    close = models.DecimalField(max_digits=24, decimal_places=8)
    volume = models.DecimalField(max_digits=32, decimal_places=8)
    source = models.CharField(max_length=32)

    class Meta:
        ordering = ["asset", "interval", "-timestamp"]
        constraints = [
            models.UniqueConstraint(fields=["asset", "interval", "timestamp"], name="pricebar_natural_key"),
            models.CheckConstraint(
                condition=_finite_positive("open")
                & _finite_positive("high")
                & _finite_positive("low")
                & _finite_positive("close"),
                name="pricebar_prices_finite_positive",
            ),
            models.CheckConstraint(condition=_finite_non_negative("volume"), name="pricebar_volume_finite"),
            models.CheckConstraint(
                condition=Q(high__gte=F("low"))
                & Q(high__gte=F("open"))
                & Q(high__gte=F("close"))
                & Q(low__lte=F("open"))
                & Q(low__lte=F("close")),
                name="pricebar_high_low_envelope",
            ),
        ]
        indexes = [models.Index(fields=["interval", "timestamp"], name="pricebar_interval_ts")]

    def __str__(self) -> str:
        return f"{self.asset_id} {self.interval} {self.timestamp:%Y-%m-%d %H:%M}"


def url_digest(url: str) -> str:
    """The key a news article is unique by: SHA-256 of its URL, hex (the URL itself may be any length)."""
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()


class NewsArticle(models.Model):
    """A news article, unique by URL, linked to the assets it mentions.

    The URL is stored whole, as text: real article URLs run past 1,400 characters, and a cut URL is
    another article's key. Uniqueness is on ``url_hash`` (an index entry of a long URL could exceed
    what a B-tree page holds); bulk upserts compute it, ``save`` keeps it in step.
    """

    url = models.TextField()
    url_hash = models.CharField(max_length=64, editable=False, help_text="SHA-256 of the URL, hex.")
    title = models.CharField(max_length=500)
    summary = models.TextField(blank=True)
    publisher = models.CharField(max_length=200, blank=True)
    published_at = models.DateTimeField(db_index=True)
    source = models.CharField(max_length=32, help_text="The provider that served it.")
    assets = models.ManyToManyField(Asset, related_name="news", blank=True)
    fetched_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-published_at"]
        # A constraint rather than unique=True: the same index, without the pattern-ops copy of it.
        constraints = [models.UniqueConstraint(fields=["url_hash"], name="newsarticle_url_hash_unique")]

    def __str__(self) -> str:
        return self.title

    def save(self, *args, **kwargs) -> None:
        """Save with ``url_hash`` computed from the URL."""
        self.url_hash = url_digest(self.url)
        if kwargs.get("update_fields") is not None and "url" in kwargs["update_fields"]:
            kwargs["update_fields"] = {*kwargs["update_fields"], "url_hash"}
        super().save(*args, **kwargs)


class IndicatorSnapshot(models.Model):
    """Technical indicators of an asset as of one bar; (asset, interval, as_of) is its natural key.

    A value is NULL while the series is shorter than that indicator's warm-up: never 0, never NaN.
    """

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="indicators")
    interval = models.CharField(max_length=4, choices=PriceBar.Interval.choices)
    as_of = models.DateTimeField(help_text="Timestamp of the last bar the values use.")
    bars_used = models.PositiveIntegerField()
    sma = models.FloatField(null=True, blank=True)
    ema = models.FloatField(null=True, blank=True)
    rsi = models.FloatField(null=True, blank=True)
    macd = models.FloatField(null=True, blank=True)
    macd_signal = models.FloatField(null=True, blank=True)
    macd_hist = models.FloatField(null=True, blank=True)
    bb_upper = models.FloatField(null=True, blank=True)
    bb_middle = models.FloatField(null=True, blank=True)
    bb_lower = models.FloatField(null=True, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["asset", "interval", "-as_of"]
        constraints = [
            models.UniqueConstraint(fields=["asset", "interval", "as_of"], name="indicator_natural_key"),
            models.CheckConstraint(
                condition=Q(rsi__isnull=True) | Q(rsi__gte=0, rsi__lte=100), name="indicator_rsi_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.asset_id} {self.interval} {self.as_of:%Y-%m-%d %H:%M}"
