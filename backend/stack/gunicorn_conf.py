"""gunicorn's settings file (``gunicorn -c python:backend.stack.gunicorn_conf``): its own lines follow LOGGING.

Without it gunicorn's master writes start-up, worker and access lines with its own formatter,
outside ``LOG_FORMAT`` and outside the redaction and escaping filters. Handing gunicorn the
project's ``LOGGING`` (which names the ``gunicorn.error`` and ``gunicorn.access`` loggers) makes
every line of the web container plain or JSON like the rest.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.core.settings")

from django.conf import settings  # noqa: E402 - the settings module needs the variable above

logconfig_dict = settings.LOGGING
