"""Periodic tasks in admin: django-celery-beat's page, with an existing row's task selected in the list.

django-celery-beat's form has two task fields: *Task (registered)*, a list built from the tasks the
web process registered, and *Task (custom)*, a text field. Only the custom one is a model field, so
the edit page of an existing row showed the list blank and the row's task in "custom", as if it were
unknown. Here the list starts on the row's task when it is registered (the custom field stays empty,
so the list's choice is what saves); a name no process registers stays in "custom" as before.
"""

from __future__ import annotations

from django.contrib import admin
from django_celery_beat.admin import PeriodicTaskAdmin as BeatPeriodicTaskAdmin
from django_celery_beat.admin import PeriodicTaskForm as BeatPeriodicTaskForm
from django_celery_beat.models import PeriodicTask


class PeriodicTaskForm(BeatPeriodicTaskForm):
    """django-celery-beat's form, with the registered task of an existing row selected."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        task = self.instance.task if self.instance.pk else ""
        if task and task in dict(self.fields["regtask"].widget.choices):
            self.initial["regtask"] = task
            self.initial["task"] = ""


class PeriodicTaskAdmin(BeatPeriodicTaskAdmin):
    """django-celery-beat's admin (actions, schedule fields, Run selected tasks) with the form above."""

    form = PeriodicTaskForm


def register(site: admin.AdminSite = admin.site) -> None:
    """Put this admin in place of django-celery-beat's own (registered when admin autodiscovered)."""
    if site.is_registered(PeriodicTask):
        site.unregister(PeriodicTask)
    site.register(PeriodicTask, PeriodicTaskAdmin)
