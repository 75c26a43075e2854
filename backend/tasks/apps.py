from django.apps import AppConfig


class TasksConfig(AppConfig):
    """The Celery task catalogue, its routing, schedules and bookkeeping."""

    name = "backend.tasks"
    label = "tasks"
    verbose_name = "Task platform"

    def ready(self) -> None:
        """Connect signal receivers in every process (web, worker, beat)."""
        from . import deadletters, priority, signals  # noqa: F401 - connects their receivers
