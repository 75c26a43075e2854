"""FinanceHub task platform settings (``DJANGO_SETTINGS_MODULE=backend.core.settings``).

Every value comes from the environment once, through the typed readers
in ``environment.py``, with a default that runs a fresh checkout with no server installed:
SQLite and kombu's filesystem transport under ``var/``. Setting ``DATABASE_URL``
and ``REDIS_URL`` switches the same code to PostgreSQL and Redis.

The declarations live in one module per section, gathered here in this order; a later section
imports the few values it builds on (paths, ``REDIS_URL``) from ``django``. The cross-checks run
last, over the whole set, so a contradiction between two sections stops start-up too.
"""

from __future__ import annotations

from ..setting_checks import check_settings

# isort: off
# Section order is reading order (Django, then Celery, then what the tasks do), not alphabetical.
from .django import *  # noqa: F403
from .celery import *  # noqa: F403
from .market import *  # noqa: F403
from .providers import *  # noqa: F403
from .monitoring import *  # noqa: F403

# isort: on

check_settings(globals())
