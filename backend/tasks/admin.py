"""Admin for dead letters: read-only rows, filters, and permissioned Replay / Discard actions."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from . import deadletters
from .models import DeadLetter

# A bulk replay is paced at DEADLETTER_REPLAY_RATE inside the request; this many seconds of
# pacing is the most one click may take. Larger replays: repeat, or use `manage.py deadletters`.
ADMIN_REPLAY_SECONDS = 10


class SymbolFilter(admin.SimpleListFilter):
    """Filter by an asset symbol found in the failed task's arguments."""

    title = "asset"
    parameter_name = "symbol"

    def lookups(self, request, model_admin):
        seen: set[str] = set()
        for symbols in model_admin.get_queryset(request).exclude(symbols="").values_list("symbols", flat=True)[:500]:
            seen.update(s for s in symbols.split(",") if s)
        return [(s, s) for s in sorted(seen)[:100]]

    def queryset(self, request, queryset):
        if self.value():
            return deadletters.filter_dead_letters(queryset, symbol=self.value())
        return queryset


def _actor(request: HttpRequest) -> str:
    return f"admin:{request.user.get_username()}"


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "task_name",
        "short_exception",
        "provider",
        "symbol_text",
        "state",
        "retries",
        "deliveries",
        "last_failure_at",
        "replay_task_id",
    )
    list_filter = ("state", "task_name", "exception_class", "provider", SymbolFilter, "last_failure_at")
    date_hierarchy = "last_failure_at"
    search_fields = ("task_id", "task_name", "exception_class", "exception_message", "symbols", "replay_task_id")
    actions = ("replay_selected", "discard_selected")
    fieldsets = (
        (None, {"fields": ("task_name", "task_id", "state", "queue", "worker")}),
        ("Failure", {"fields": ("exception_class", "exception_message", "provider", "symbols", "traceback_block")}),
        ("Arguments (secrets redacted)", {"fields": ("args", "kwargs")}),
        ("Counts and times", {"fields": ("retries", "deliveries", "first_failure_at", "last_failure_at")}),
        (
            "Handling",
            {"fields": ("replay_task_id", "replayed_by", "replayed_at", "discarded_by", "discarded_at")},
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        # Every field is evidence: nobody edits a dead letter, they replay or discard it.
        return [f.name for f in self.model._meta.fields] + ["traceback_block"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("tasks.replay_deadletter")

    def has_discard_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("tasks.discard_deadletter")

    @admin.display(description="exception", ordering="exception_class")
    def short_exception(self, obj: DeadLetter) -> str:
        return obj.exception_class.rsplit(".", 1)[-1]

    @admin.display(description="symbols")
    def symbol_text(self, obj: DeadLetter) -> str:
        return ", ".join(obj.symbol_list[:5]) + (" …" if len(obj.symbol_list) > 5 else "")

    @admin.display(description="traceback")
    def traceback_block(self, obj: DeadLetter) -> str:
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', obj.traceback or "-")

    @admin.action(description="Replay selected dead letters", permissions=["replay"])
    def replay_selected(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        rate = float(settings.DEADLETTER_REPLAY_RATE)
        limit = max(1, int(rate * ADMIN_REPLAY_SECONDS)) if rate > 0 else None
        rows = list(queryset.order_by("pk")[: limit + 1] if limit else queryset.order_by("pk"))
        overflow = bool(limit and len(rows) > limit)
        result = deadletters.replay_many(rows[:limit] if limit else rows, actor=_actor(request), rate=rate)
        if result.done:
            self.message_user(request, f"Replayed {len(result.done)} dead letters.", messages.SUCCESS)
        for reason in result.refused.values():
            self.message_user(request, f"Not replayed: {reason}", messages.WARNING)
        if overflow:
            self.message_user(
                request,
                f"Replays are throttled to {rate:g}/s: only the first {limit} were sent. Run the action again "
                "for the rest, or use `manage.py deadletters replay`.",
                messages.WARNING,
            )

    @admin.action(description="Discard selected dead letters", permissions=["discard"])
    def discard_selected(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        result = deadletters.discard_many(queryset.order_by("pk"), actor=_actor(request))
        if result.done:
            self.message_user(request, f"Discarded {len(result.done)} dead letters.", messages.SUCCESS)
        for reason in result.refused.values():
            self.message_user(request, f"Not discarded: {reason}", messages.WARNING)
