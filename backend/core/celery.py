"""The one Celery app of the FinanceHub task platform, bare: built and configured from settings.

Every layer names this app (``@app.task``, ``app.send_task``, ``app.control``). Nothing here names a
layer above core: what a worker, beat or Flower process runs on top of it (the task modules, the
worker and beat hooks, the consumer bootsteps) is wired by the composition root,
``backend/stack/celery.py``, the module ``celery -A backend.stack`` loads.
"""

import os
import sys

from celery import Celery
from celery.signals import beat_init, celeryd_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.core.settings")

app = Celery("backend")
app.config_from_object("django.conf:settings", namespace="CELERY")


def refuse_without_task_modules(sender: object = None, **_: object) -> None:
    """Stop a worker or beat started on this bare app (``celery -A backend.core``) before it runs.

    Such a worker would consume the queues with no task registered, and every message it took would end
    as an unknown task (a dead letter); a beat would run without the stack's start-up hooks. The
    composition root assigns ``imports``; this module never does, so an empty tuple means the wrong ``-A``.
    """
    target = getattr(sender, "app", app)
    if target is app and not app.conf.imports:
        sys.stderr.write(
            "configuration error: the Celery app backend.core carries no tasks;"
            " start workers and beat with `celery -A backend.stack ...`\n"
        )
        # SystemExit, not an exception: Celery's signal dispatch logs exceptions and carries on.
        raise SystemExit(2)


celeryd_init.connect(refuse_without_task_modules)
beat_init.connect(refuse_without_task_modules)
