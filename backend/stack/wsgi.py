"""WSGI entry point for gunicorn or any WSGI server."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.core.settings")
application = get_wsgi_application()

# Tasks the web sends (admin replays, "run now") are counted in the shared metric files, on the app as
# workers run it (the same task modules: a replay warning knows what a worker of this deploy has).
from backend.tasks.telemetry import multiproc  # noqa: E402 - needs the configured settings above

from . import celery  # noqa: E402, F401

multiproc.enable()
