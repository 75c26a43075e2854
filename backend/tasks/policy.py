"""Retry policy shared by every task: exponential backoff with jitter, a floor and Retry-After."""

from __future__ import annotations

from celery import Task
from django.conf import settings

from .accounting import record_outcome
from .deadletters import delivery_guard, redact_value


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

    def __call__(self, *args, **kwargs):
        """Run the task under the poison cap (deadletters.delivery_guard).

        reject_on_worker_lost redelivers a message whose worker died under it, forever if the
        task itself kills the worker; the guard counts deliveries and fails the message into a
        dead letter, acknowledged, once it passes DEADLETTER_MAX_DELIVERIES.
        """
        with delivery_guard(self):
            return super().__call__(*args, **kwargs)

    def apply_async(self, args=None, kwargs=None, **options):
        """Send the task with redacted argument reprs: they travel in task events (Flower shows them)."""
        options.setdefault("argsrepr", repr(redact_value(list(args or ()))))
        options.setdefault("kwargsrepr", repr(redact_value(dict(kwargs or {}))))
        return super().apply_async(args, kwargs, **options)

    def beat_schedule(self) -> str | None:
        """The beat schedule that sent this run (django-celery-beat's header), if beat sent it."""
        return getattr(self.request, "periodic_task_name", None)

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        """Count a finally failed batch against its dispatch run, so its completeness stays true.

        The items are the task's CURRENT list argument: after a subset retry, only that subset.
        """
        kwargs = kwargs or {}
        run_id = kwargs.get("run_id")
        if run_id is not None:
            # A batch task's batch is its list argument (symbols or asset ids).
            items = next((arg for arg in args or () if isinstance(arg, list)), [])
            record_outcome(run_id, kwargs.get("batch"), failed=items)
        super().on_failure(exc, task_id, args, kwargs, einfo)

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
