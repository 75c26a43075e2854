"""Retry policy shared by every task: exponential backoff with jitter, a floor and Retry-After."""

from __future__ import annotations

from celery import Task
from django.conf import settings


def retry_delay(computed: float, *, retry_after: float | None, floor: float, cap: float) -> float:
    """Clamp a backoff delay to [floor, cap], waiting longer when the provider asked to.

    Celery's full jitter draws from [0, computed], so without a floor a retry can fire at once.
    """
    delay = max(floor, computed)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, cap)


class ReliableTask(Task):
    """Base class for every task: late acks, redelivery on worker loss, bounded retry delays."""

    abstract = True
    acks_late = True
    reject_on_worker_lost = True

    def retry(
        self,
        args=None,
        kwargs=None,
        exc=None,
        throw=True,
        eta=None,
        countdown=None,
        max_retries=None,
        **options,
    ):
        """Apply the floor, the cap and the provider's Retry-After to every retry delay."""
        if countdown is not None and eta is None:
            countdown = retry_delay(
                countdown,
                retry_after=getattr(exc, "retry_after", None),
                floor=settings.TASK_RETRY_DELAY_FLOOR,
                cap=settings.TASK_RETRY_BACKOFF_MAX,
            )
        return super().retry(
            args=args,
            kwargs=kwargs,
            exc=exc,
            throw=throw,
            eta=eta,
            countdown=countdown,
            max_retries=max_retries,
            **options,
        )
