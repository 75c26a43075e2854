from django.apps import AppConfig


class DeadLettersConfig(AppConfig):
    """Dead letters: what finally failed, or never ran, kept for an operator to replay or discard."""

    name = "backend.deadletters"
    label = "deadletters"
    verbose_name = "Dead letters"

    def ready(self) -> None:
        """Connect the capture receivers and plug this app into the task platform's extension points.

        The task platform (``backend.tasks``) imports nothing from here: every run is entered under
        the delivery cap through ``policy.install_run_guard``, and cleanup and the heartbeat take this
        app's retention and fallback flush through ``maintenance``'s hooks.
        """
        from backend.tasks import maintenance, policy

        from . import capture, consumer, housekeeping, poison  # noqa: F401 - signal receivers

        policy.install_run_guard(poison.delivery_guard)
        maintenance.add_retention("dead_letters", housekeeping.delete_closed)
        maintenance.add_heartbeat_chore("dead_letters_flushed", housekeeping.flush_parked)
