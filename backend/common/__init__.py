"""Plain-Python helpers shared by every layer (providers included): no Django, no Celery."""
