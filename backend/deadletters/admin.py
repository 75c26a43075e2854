"""Admin for dead letters: read-only evidence, filters that match how operators ask, Replay and
Discard (one by one on the detail page, or in bulk), and the history of every action, refusals included.

Replaying a row whose arguments were cut goes through a confirmation page first; a replay of a row
whose recorded error is permanent says that it will fail the same way. Columns and detail blocks
are in ``admin_display``.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import DatabaseError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_POST
from kombu.exceptions import KombuError

from backend import deadletters

from .admin_display import (
    DeadLetterDisplay,
    ExceptionFilter,
    HistoryInline,
    ProviderFilter,
    SymbolFilter,
)
from .models import DeadLetter, DeadLetterAction

# A bulk replay is paced at DEADLETTER_REPLAY_RATE inside the request; this many seconds of
# pacing is the most one click may take. Larger replays: repeat, or use `manage.py deadletters`.
ADMIN_REPLAY_SECONDS = 10
CONFIRM_TRUNCATED = "confirm_truncated"
# Each action, the permission it needs and what a refusal records.
_ACTION_PERMISSIONS = {
    "replay_selected": (DeadLetterAction.Kind.REPLAY, "deadletters.replay_deadletter"),
    "discard_selected": (DeadLetterAction.Kind.DISCARD, "deadletters.discard_deadletter"),
}


def _actor(request: HttpRequest) -> str:
    return f"admin:{request.user.get_username()}"


def _refusal_reason(request: HttpRequest, permission: str) -> str:
    return f"refused: {_actor(request)} lacks the permission {permission}"


@admin.register(DeadLetter)
class DeadLetterAdmin(DeadLetterDisplay, admin.ModelAdmin):
    list_display = (
        "id",
        "task_text",
        "exception_short",
        "provider_text",
        "symbol_text",
        "state_text",
        "retries",
        "last_failure",
        "replay_link",
    )
    list_filter = (
        "state",
        "origin",
        "task_name",
        ExceptionFilter,
        ProviderFilter,
        SymbolFilter,
        "arguments_truncated",
        "last_failure_at",
    )
    date_hierarchy = "last_failure_at"
    search_fields = ("task_id", "task_name", "exception_class", "exception_message", "symbols", "replay_task_id")
    actions = ("replay_selected", "discard_selected")
    inlines = (HistoryInline,)
    change_form_template = "admin/deadletters/deadletter/change_form.html"

    def get_fieldsets(self, request: HttpRequest, obj=None):
        head = (
            "task_name",
            "task_id",
            "origin",
            "state",
            "replay_warning_text",
            "replay_chain_block",
            "queue",
            "worker",
        )
        fieldsets = [
            (None, {"fields": head}),
            (
                "Failure",
                {
                    "fields": (
                        "exception_class",
                        "lineage_text",
                        "exception_message",
                        "provider_failures_block",
                        "symbols_full",
                        "traceback_block",
                    )
                },
            ),
            (
                "Arguments (secrets redacted)",
                {"fields": ("args", "kwargs", "arguments_known", "truncation_note", "sanitised")},
            ),
            ("Counts and times", {"fields": ("retries", "deliveries", "first_failure_at", "last_failure_at")}),
            (
                "Last handling",
                {"fields": ("replay_task_id", "replayed_by", "replayed_at", "discarded_by", "discarded_at")},
            ),
        ]
        if obj is not None and obj.message:
            fieldsets.insert(1, ("Message as it arrived (redacted, bounded)", {"fields": ("message_block",)}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        # Every field is evidence: nobody edits a dead letter, they replay or discard it.
        extra = [
            "traceback_block",
            "replay_chain_block",
            "lineage_text",
            "provider_failures_block",
            "symbols_full",
            "replay_warning_text",
            "truncation_note",
            "message_block",
        ]
        return [f.name for f in self.model._meta.fields] + extra

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # An operator replays or discards; the periodic cleanup deletes closed rows past retention.
        return False

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("deadletters.replay_deadletter")

    def has_discard_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("deadletters.discard_deadletter")

    # --- pages ------------------------------------------------------------------------------------
    def get_urls(self):
        own = [
            path(
                "<int:pk>/replay/", self.admin_site.admin_view(self.replay_view), name="deadletters_deadletter_replay"
            ),
            path(
                "<int:pk>/discard/",
                self.admin_site.admin_view(self.discard_view),
                name="deadletters_deadletter_discard",
            ),
        ]
        return own + super().get_urls()

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        row = self.get_object(request, object_id)
        is_open = row is not None and row.state == DeadLetter.State.OPEN
        # A row whose arguments were cut offers Replay too: the button leads to the confirmation page.
        refusal = deadletters.replay_refusal(row, confirm_truncated=True) if row is not None else None
        context = {
            "can_replay": is_open and refusal is None and self.has_replay_permission(request),
            "can_discard": is_open and self.has_discard_permission(request),
            "replay_warning": deadletters.replay_warning(row) if is_open and row is not None else "",
            "no_action_reason": (
                f"No action: this dead letter is {row.get_state_display()}."
                if row is not None and not is_open
                else (str(refusal) if refusal else "You may not replay or discard dead letters.")
            ),
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra_context=context)

    def changelist_view(self, request: HttpRequest, extra_context=None):
        refused = self._refuse_unpermitted_action(request)
        if refused is not None:
            return refused
        pending, parked = deadletters.pending_fallback(), deadletters.parked_count()
        if pending:
            self.message_user(
                request,
                f"{pending} dead letters wait in the fallback (the database was away): "
                "`manage.py deadletters flush` moves them in.",
                messages.WARNING,
            )
        if parked:
            self.message_user(
                request,
                f"{parked} fallback records are parked (the database refused them as they are): "
                "`manage.py deadletters parked` shows them.",
                messages.WARNING,
            )
        # The list is wide (nine columns plus the filters): give it the width the app sidebar would take.
        extra_context = {"is_nav_sidebar_enabled": False, **(extra_context or {})}
        return super().changelist_view(request, extra_context)

    def _refuse_unpermitted_action(self, request: HttpRequest) -> HttpResponse | None:
        """A Replay or Discard action posted by a user without its permission: Django would drop it
        silently ("No action selected"); it is refused here, in each selected row's history."""
        if request.method != "POST":
            return None
        action = request.POST.get("action", "")
        if action not in _ACTION_PERMISSIONS:
            return None
        kind, permission = _ACTION_PERMISSIONS[action]
        if request.user.has_perm(permission):
            return None
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        rows = DeadLetter.objects.filter(pk__in=[pk for pk in selected if pk.isdigit()]).order_by("pk")[:1000]
        count = deadletters.refuse(rows, kind=kind, actor=_actor(request), reason=_refusal_reason(request, permission))
        verb = "replay" if kind == DeadLetterAction.Kind.REPLAY else "discard"
        self.message_user(
            request, f"You may not {verb} dead letters: refused, and noted in the history of {count}.", messages.ERROR
        )
        return HttpResponseRedirect(request.get_full_path())

    def _refuse_one(self, request: HttpRequest, row: DeadLetter, action: str) -> HttpResponseRedirect:
        """Refuse ``action`` on one row for lack of its permission: noted in the row's history, said, back to it."""
        kind, permission = _ACTION_PERMISSIONS[action]
        deadletters.refuse([row], kind=kind, actor=_actor(request), reason=_refusal_reason(request, permission))
        verb = "replay" if kind == DeadLetterAction.Kind.REPLAY else "discard"
        self.message_user(request, f"You may not {verb} dead letters (refused; noted in its history).", messages.ERROR)
        return self._back(row.pk)

    def _back(self, pk: int) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:deadletters_deadletter_change", args=[pk]))

    def replay_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return require_POST(self._replay_one)(request, pk)

    def discard_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return require_POST(self._discard_one)(request, pk)

    def _replay_one(self, request: HttpRequest, pk: int) -> HttpResponse:
        row = get_object_or_404(DeadLetter, pk=pk)
        if not self.has_replay_permission(request):
            return self._refuse_one(request, row, "replay_selected")
        confirmed = request.POST.get(CONFIRM_TRUNCATED) == "yes"
        if row.arguments_truncated and row.state == DeadLetter.State.OPEN and not confirmed:
            post_to = reverse("admin:deadletters_deadletter_replay", args=[pk])
            return self._confirmation(
                request, [row], post_to, [], back=reverse("admin:deadletters_deadletter_change", args=[pk])
            )
        try:
            new_id = deadletters.replay(row, actor=_actor(request), confirm_truncated=confirmed)
        except deadletters.ReplayRefused as exc:
            self.message_user(request, f"Not replayed: {exc}", messages.WARNING)
        except (KombuError, OSError) as exc:
            self.message_user(request, f"Not replayed: the broker refused the task ({exc})", messages.ERROR)
        except DatabaseError as exc:
            self.message_user(request, f"Not replayed, nothing sent: the database refused ({exc})", messages.ERROR)
        else:
            self.message_user(request, f"Replayed as task {new_id}.", messages.SUCCESS)
            warning = deadletters.replay_warning(row)
            if warning:
                self.message_user(request, warning, messages.WARNING)
        return self._back(pk)

    def _discard_one(self, request: HttpRequest, pk: int) -> HttpResponse:
        row = get_object_or_404(DeadLetter, pk=pk)
        if not self.has_discard_permission(request):
            return self._refuse_one(request, row, "discard_selected")
        if deadletters.discard(row, actor=_actor(request)):
            self.message_user(request, "Discarded.", messages.SUCCESS)
        else:
            self.message_user(request, f"Not discarded: it is {row.get_state_display()}, not open.", messages.WARNING)
        return self._back(pk)

    def _confirmation(
        self, request: HttpRequest, rows: list[DeadLetter], post_to: str, hidden: list[tuple[str, object]], *, back: str
    ) -> TemplateResponse:
        """The page that asks before cut arguments are sent: the rows, what each kept, their warnings."""
        context = {
            **self.admin_site.each_context(request),
            "title": "Replay with cut arguments?",
            "opts": self.model._meta,
            "rows": [
                {"row": row, "kept": deadletters.truncation_text(row), "warning": deadletters.replay_warning(row)}
                for row in rows
            ],
            "post_to": post_to,
            "hidden": hidden,
            "confirm_field": CONFIRM_TRUNCATED,
            "keep_chars": f"{settings.DEADLETTER_KEEP_CHARS:,}",
            "back": back,
        }
        return TemplateResponse(request, "admin/deadletters/deadletter/replay_confirmation.html", context)

    # --- bulk actions -----------------------------------------------------------------------------
    def _report(self, request: HttpRequest, result: deadletters.BulkResult) -> None:
        for outcome, pks in result.outcomes.items():
            level = messages.SUCCESS if outcome in ("replayed", "discarded") else messages.WARNING
            self.message_user(request, f"{outcome}: {len(pks)} ({', '.join(map(str, pks[:10]))})", level)
        if result.warnings:
            pks = sorted(result.warnings)
            self.message_user(
                request,
                f"{len(pks)} replayed dead letters recorded a permanent error ({', '.join(map(str, pks[:10]))}): "
                f"each will fail the same way unless its cause was fixed. #{pks[0]}: {result.warnings[pks[0]]}",
                messages.WARNING,
            )

    @admin.action(description="Replay selected dead letters", permissions=["replay"])
    def replay_selected(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> HttpResponse | None:
        rate = float(settings.DEADLETTER_REPLAY_RATE)
        limit = max(1, int(rate * ADMIN_REPLAY_SECONDS)) if rate > 0 else None
        rows = list(queryset.order_by("pk")[: limit + 1] if limit else queryset.order_by("pk"))
        overflow = bool(limit and len(rows) > limit)
        rows = rows[:limit] if limit else rows
        confirmed = request.POST.get(CONFIRM_TRUNCATED) == "yes"
        cut = [row for row in rows if row.arguments_truncated and row.state == DeadLetter.State.OPEN]
        if cut and not confirmed:
            # The confirmation posts the same action back for exactly these rows (Django runs an action
            # posted with selected rows and no "index", as it does for its own delete confirmation).
            hidden: list[tuple[str, object]] = [("action", "replay_selected")]
            hidden += [(helpers.ACTION_CHECKBOX_NAME, row.pk) for row in rows]
            return self._confirmation(request, cut, request.get_full_path(), hidden, back=request.get_full_path())
        self._report(
            request, deadletters.replay_many(rows, actor=_actor(request), rate=rate, confirm_truncated=confirmed)
        )
        if overflow:
            self.message_user(
                request,
                f"Replays are throttled to {rate:g}/s: only the first {limit} were sent. Run the action again "
                "for the rest, or use `manage.py deadletters replay`.",
                messages.WARNING,
            )
        return None

    @admin.action(description="Discard selected dead letters", permissions=["discard"])
    def discard_selected(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        self._report(request, deadletters.discard_many(queryset.order_by("pk"), actor=_actor(request)))
