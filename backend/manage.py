#!/usr/bin/env python
"""Django's command-line utility for FinanceHub's task platform."""

import os
import sys
from pathlib import Path


def main() -> None:
    """Run a management command with the repository root importable."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.core.settings")
    from django.core.management import execute_from_command_line

    # Loads settings (bad configuration exits with one line) and the Celery app as workers run it.
    import backend.stack.celery  # noqa: F401

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
