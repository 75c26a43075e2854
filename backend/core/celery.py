"""The one Celery app of the FinanceHub task platform, bare: built and configured from settings.

Every layer names this app (``@app.task``, ``app.send_task``, ``app.control``). Nothing here names a
layer above core: what a worker, beat or Flower process runs on top of it (the task modules, the
worker and beat hooks, the consumer bootsteps) is wired by the composition root,
``backend/stack/celery.py``, the module ``celery -A backend.stack`` loads.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.core.settings")

app = Celery("backend")
app.config_from_object("django.conf:settings", namespace="CELERY")
