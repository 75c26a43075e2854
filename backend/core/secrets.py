"""The secret values of this deployment, read from settings at the moment they are needed.

``backend.common.redaction`` knows what secrets look like but imports no Django; this is the
Django side that tells it which values to hide (the logging filter is handed this callable in
``settings.LOGGING``; dead letters pass its result in).
"""

from __future__ import annotations

from django.conf import settings

from backend.common.redaction import secret_values, url_password

PROVIDER_KEY_SETTINGS = ("ALPHA_VANTAGE_API_KEY", "COINGECKO_API_KEY", "COINMARKETCAP_API_KEY", "NEWSAPI_API_KEY")
SERVICE_URL_SETTINGS = ("REDIS_URL", "CELERY_BROKER_URL", "CACHE_REDIS_URL", "PROVIDER_STATE_REDIS_URL")
# A Slack webhook URL is itself the credential (the secret is its path).
OTHER_SECRET_SETTINGS = ("SECRET_KEY", "METRICS_TOKEN", "ALERT_WEBHOOK_URL")


def configured_secrets() -> list[str]:
    """Values that must never be shown: provider keys and the passwords of the service URLs."""
    values = [str(getattr(settings, name, "") or "") for name in (*PROVIDER_KEY_SETTINGS, *OTHER_SECRET_SETTINGS)]
    values.append(str(settings.DATABASES.get("default", {}).get("PASSWORD") or ""))
    values.extend(url_password(str(getattr(settings, name, "") or "")) or "" for name in SERVICE_URL_SETTINGS)
    # Flower's basic auth: "user:password,user2:password2".
    flower = str(getattr(settings, "FLOWER_BASIC_AUTH", "") or "")
    values.extend(entry.partition(":")[2] for entry in flower.split(","))
    return secret_values(values)
