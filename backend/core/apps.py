from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Project-level commands (run-stack helpers) and checks."""

    name = "backend.core"
    label = "core"

    def ready(self) -> None:
        from . import deploy_checks  # noqa: F401 - registers the deploy checks
