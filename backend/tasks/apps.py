from django.apps import AppConfig


class TasksConfig(AppConfig):
    """The Celery task catalogue, its routing, retry policy, schedules, pipelines and run accounting."""

    name = "backend.tasks"
    label = "tasks"
    verbose_name = "Task platform"

    def ready(self) -> None:
        """Connect signal receivers and register every task in every process (web, worker, beat)."""
        # The web process never runs a task, but admin's "Task (registered)" list and anything
        # that sends by name read the app's registry: fill it here, not only in the worker.
        # Admin autodiscovery (django.contrib.admin's ready, first in INSTALLED_APPS) has registered
        # django-celery-beat's periodic task admin by now; ours replaces it.
        from . import (  # noqa: F401 - receivers, task registry
            connections,
            log_fields,
            priority,
            redaction_signals,
            schedule_admin,
            signals,
            tasks,
            ticks,
        )
        from .telemetry import celery_signals  # noqa: F401 - task metrics' receivers

        schedule_admin.register()
