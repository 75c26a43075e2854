"""Model signals that start work: a new or re-activated asset gets its history backfilled."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from backend.market.models import Asset


@receiver(pre_save, sender=Asset, dispatch_uid="asset-remember-activity")
def remember_previous_activity(sender, instance: Asset, **kwargs) -> None:
    """Note whether the asset was active before this save, to spot re-activation."""
    if instance.pk is None:
        instance._was_active = False
    else:
        instance._was_active = Asset.objects.filter(pk=instance.pk, is_active=True).exists()


@receiver(post_save, sender=Asset, dispatch_uid="asset-backfill-on-activation")
def backfill_on_activation(sender, instance: Asset, created: bool, raw: bool = False, **kwargs) -> None:
    """Queue a backfill once the transaction commits, when an asset becomes active."""
    if raw or not instance.is_active or getattr(instance, "_was_active", True):
        return
    from .tasks import enqueue_backfill  # the task module imports models; import at use time

    symbol = instance.symbol
    transaction.on_commit(lambda: enqueue_backfill(symbol))
