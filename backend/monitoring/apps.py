from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    """What operators look at: dispatch runs (fan-out accounting) and heartbeats."""

    name = "backend.monitoring"
    label = "monitoring"
