"""The composition root: the one package that wires every layer into the running stack's processes.

Everything else imports downwards only (``docs/TASK_QUEUE_ARCHITECTURE.md``, "The code";
``tests/unit/test_layers.py``). This package sits above every layer and is imported by none of them:

* ``celery``        — the Celery app as worker, beat and Flower run it (``celery -A backend.stack``):
  task modules, consumer bootsteps, worker and beat start-up hooks;
* ``urls``          — the URL map of the web (``ROOT_URLCONF``): dashboard, admin, health, metrics;
* ``wsgi``          — the web's entry point (``WSGI_APPLICATION``, gunicorn);
* ``gunicorn_conf`` — gunicorn's settings file (its own log lines follow ``LOGGING``);
* ``commands``      — the command lines that start those processes, for tests and benchmarks.

Settings name it only as strings; ``backend/manage.py`` imports ``celery``, so a management command
runs on the same app a worker does. Importing the package itself wires nothing (``commands`` is
plain Python): ``celery -A backend.stack`` finds the app in ``backend.stack.celery``.
"""
