# One image for every FinanceHub process: web (admin), worker, beat, Flower and the
# one-shot migrate job. docker-compose.yml picks the process through `command:`.
FROM python:3.11-slim

# PYTHONPATH: `celery -A backend.stack` imports from the repository root, as `make run` does.
# FINANCEHUB_VAR_DIR: SQLite files, the filesystem broker and generated secrets when no
# DATABASE_URL/REDIS_URL is given (compose always gives both).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    DJANGO_SETTINGS_MODULE=backend.core.settings \
    FINANCEHUB_VAR_DIR=/app/var \
    DJANGO_STATIC_ROOT=/app/static

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
# var/prometheus is where web, worker and beat share their metric files (a named volume in compose).
RUN mkdir -p /app/var/prometheus && chown -R app:app /app/var

# The admin's static files, collected (and gzipped) into the image for WhiteNoise to serve.
# Throwaway secrets and broker URL: settings must load, and neither a generated secret file nor the
# filesystem broker's folders may end up in a layer. The secrets are random (start-up refuses
# placeholders) and live only in this one shell. Nothing connects to anything here.
RUN DJANGO_SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(48))')" \
    METRICS_TOKEN="$(python -c 'import secrets; print(secrets.token_urlsafe(48))')" \
    REDIS_URL=redis://collectstatic-only:6379/0 \
    python backend/manage.py collectstatic --noinput --verbosity 0

USER app

EXPOSE 8000 5555

# The web process: gunicorn (WEB_CONCURRENCY worker processes, default 2), static files through
# WhiteNoise. compose publishes it on 127.0.0.1 only; put a TLS proxy in front to expose it.
CMD ["gunicorn", "backend.stack.wsgi:application", "--config", "python:backend.stack.gunicorn_conf", "--bind", "0.0.0.0:8000", "--access-logfile", "-", "--no-control-socket"]
