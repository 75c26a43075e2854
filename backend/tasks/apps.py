from django.apps import AppConfig


class TasksConfig(AppConfig):
    """The Celery task catalogue, its routing, schedules and bookkeeping."""

    name = "backend.tasks"
    label = "tasks"
    verbose_name = "Task platform"
