# One image for every FinanceHub process: web (admin), worker, beat, Flower and the
# one-shot migrate job. docker-compose.yml picks the process through `command:`.
FROM python:3.11-slim

# PYTHONPATH: `celery -A backend.core` imports from the repository root, as `make run` does.
# FINANCEHUB_VAR_DIR: SQLite files, the filesystem broker and generated secrets when no
# DATABASE_URL/REDIS_URL is given (compose always gives both).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    DJANGO_SETTINGS_MODULE=backend.core.settings \
    FINANCEHUB_VAR_DIR=/app/var

WORKDIR /app

# An unprivileged user with a fixed UID: no process in the stack runs as root.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app

# Dependencies first: this layer is rebuilt only when requirements change. Every pin ships
# a manylinux wheel (TA-Lib's bundles the C library), so no compiler is needed.
COPY requirements/base.txt requirements/base.txt
RUN pip install -r requirements/base.txt

# Only the code, never the whole checkout: .env, var/ (local secrets and databases) and
# .venv must not end up in an image layer. The code stays root-owned, read-only to `app`.
COPY backend/ backend/
RUN mkdir -p /app/var && chown app:app /app/var

USER app

EXPOSE 8000 5555

# Django's own server: gunicorn is not in requirements/base.txt, and the web process only
# serves the admin. compose publishes it on 127.0.0.1 only; put a real WSGI server and a
# TLS proxy in front before exposing it further. --insecure serves the admin's static files
# with DEBUG off.
CMD ["python", "backend/manage.py", "runserver", "0.0.0.0:8000", "--noreload", "--insecure"]
