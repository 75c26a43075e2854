"""Task and provider metrics written by every process that sends or runs tasks (prometheus-client).

``multiproc`` turns on prometheus-client's multiprocess mode (memory-mapped files per process in
``settings.PROMETHEUS_MULTIPROC_DIR``, merged at scrape time by the web's /metrics); ``instruments``
defines the metrics; ``celery_signals`` feeds them from Celery's signals; ``provider_observer`` is
the callback the provider chains are given, so providers never import a metrics library.
"""

from .instruments import provider_observer

__all__ = ["provider_observer"]
