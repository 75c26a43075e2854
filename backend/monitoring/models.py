"""Monitoring owns no tables: it reads the bookkeeping the task platform writes (backend.tasks.runs)."""
