from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Project-level commands (run-stack helpers) and checks."""

    name = "backend.core"
    label = "core"
