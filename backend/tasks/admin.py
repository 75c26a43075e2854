"""Admin for dead letters: read-only evidence, filters that match how operators ask, Replay and
Discard (one by one on the detail page, or in bulk), and the history of every action."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST
from kombu.exceptions import KombuError

from . import deadletters
from .models import DeadLetter, DeadLetterAction

# A bulk replay is paced at DEADLETTER_REPLAY_RATE inside the request; this many seconds of
# pacing is the most one click may take. Larger replays: repeat, or use `manage.py deadletters`.
ADMIN_REPLAY_SECONDS = 10
# Lineage entries every exception shares: offering them as filters would match everything.
_TOO_GENERAL = {"BaseException", "Exception"}


def _names_in(model_admin, request, field: str) -> set[str]:
    """Names stored as ``,a,b,`` in ``field`` across (a bounded sample of) the rows."""
    seen: set[str] = set()
    for value in model_admin.get_queryset(request).exclude(**{field: ""}).values_list(field, flat=True)[:1000]:
        seen.update(name for name in value.split(",") if name)
    return seen


class _ListedNameFilter(admin.SimpleListFilter):
    """Filter on one name of a ``,a,b,`` column, through the shared filter vocabulary."""

    field = ""  # the column holding the names
    keyword = ""  # the filter_dead_letters keyword

    def offered(self, names: set[str]) -> set[str]:
        return names

    def lookups(self, request, model_admin):
        return [(n, n) for n in sorted(self.offered(_names_in(model_admin, request, self.field)))[:100]]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        return deadletters.filter_dead_letters(queryset, **{self.keyword: self.value()})


class ExceptionFilter(_ListedNameFilter):
    """Filter by an exception class, its subclasses included (``TransientProviderError`` finds them all)."""

    title = "exception (and subclasses)"
    parameter_name = keyword = "exception"
    field = "exception_lineage"

    def offered(self, names: set[str]) -> set[str]:
        return {dotted.rsplit(".", 1)[-1] for dotted in names} - _TOO_GENERAL


class ProviderFilter(_ListedNameFilter):
    """Filter by any provider that failed for the task."""

    title = "provider that failed"
    parameter_name = keyword = "provider"
    field = "providers"


class SymbolFilter(_ListedNameFilter):
    """Filter by an asset symbol found in the failed task's arguments."""

    title = "asset"
    parameter_name = keyword = "symbol"
    field = "symbols"


class HistoryInline(admin.TabularInline):
    """Every replay, discard and replay outcome of the dead letter, oldest first; nobody edits it."""

    model = DeadLetterAction
    verbose_name = "action"
    verbose_name_plural = "history"
    fields = ("at", "actor", "kind", "result", "detail", "bulk")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.has_perm("tasks.view_deadletter")

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


def _actor(request: HttpRequest) -> str:
    return f"admin:{request.user.get_username()}"


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "task_name",
        "exception_short",
        "provider_text",
        "symbol_text",
        "state_text",
        "retries",
        "last_failure",
        "replay_link",
    )
    list_filter = ("state", "task_name", ExceptionFilter, ProviderFilter, SymbolFilter, "last_failure_at")
    date_hierarchy = "last_failure_at"
    search_fields = ("task_id", "task_name", "exception_class", "exception_message", "symbols", "replay_task_id")
    actions = ("replay_selected", "discard_selected")
    inlines = (HistoryInline,)
    change_form_template = "admin/tasks/deadletter/change_form.html"
    fieldsets = (
        (None, {"fields": ("task_name", "task_id", "state", "replay_chain_block", "queue", "worker")}),
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
        ("Arguments (secrets redacted)", {"fields": ("args", "kwargs", "sanitised")}),
        ("Counts and times", {"fields": ("retries", "deliveries", "first_failure_at", "last_failure_at")}),
        (
            "Last handling",
            {"fields": ("replay_task_id", "replayed_by", "replayed_at", "discarded_by", "discarded_at")},
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        # Every field is evidence: nobody edits a dead letter, they replay or discard it.
        extra = ["traceback_block", "replay_chain_block", "lineage_text", "provider_failures_block", "symbols_full"]
        return [f.name for f in self.model._meta.fields] + extra

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # An operator replays or discards; the periodic cleanup deletes closed rows past retention.
        return False

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("tasks.replay_deadletter")

    def has_discard_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("tasks.discard_deadletter")

    # --- columns ----------------------------------------------------------------------------------
    @admin.display(description="exception", ordering="exception_class")
    def exception_short(self, obj: DeadLetter) -> str:
        return format_html('<span title="{}">{}</span>', obj.exception_class, obj.exception_name)

    @admin.display(description="providers failed")
    def provider_text(self, obj: DeadLetter) -> str:
        return ", ".join(obj.provider_list) or "-"

    @admin.display(description="symbols")
    def symbol_text(self, obj: DeadLetter) -> str:
        return ", ".join(obj.symbol_list[:5]) + (" …" if len(obj.symbol_list) > 5 else "")

    @admin.display(description="state", ordering="state")
    def state_text(self, obj: DeadLetter) -> str:
        return obj.get_state_display()

    @admin.display(description="last failure", ordering="last_failure_at")
    def last_failure(self, obj: DeadLetter) -> str:
        return format_html(
            '<time datetime="{}">{}</time>', obj.last_failure_at.isoformat(), f"{obj.last_failure_at:%Y-%m-%d %H:%M}"
        )

    @admin.display(description="replay")
    def replay_link(self, obj: DeadLetter) -> str:
        later = DeadLetter.objects.filter(replay_of=obj).only("pk").first()
        if later is not None:
            url = reverse("admin:tasks_deadletter_change", args=[later.pk])
            return format_html('<a href="{}">failed as #{}</a>', url, later.pk)
        if obj.replay_task_id:
            return format_html('<span title="{}">{}…</span>', obj.replay_task_id, obj.replay_task_id[:8])
        return "-"

    # --- detail fields ----------------------------------------------------------------------------
    @admin.display(description="traceback")
    def traceback_block(self, obj: DeadLetter) -> str:
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', obj.traceback or "-")

    @admin.display(description="symbols")
    def symbols_full(self, obj: DeadLetter) -> str:
        return ", ".join(obj.symbol_list) or "-"

    @admin.display(description="exception lineage")
    def lineage_text(self, obj: DeadLetter) -> str:
        return " < ".join(obj.lineage_names) or "-"

    @admin.display(description="providers that failed")
    def provider_failures_block(self, obj: DeadLetter) -> str:
        if not obj.provider_failures:
            return "-"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((f.get("provider", ""), f.get("error", ""), f.get("message", "")) for f in obj.provider_failures),
        )
        return format_html(
            '<table class="provider-failures"><thead><tr><th>provider</th><th>error</th><th>message</th></tr>'
            "</thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="replay chain")
    def replay_chain_block(self, obj: DeadLetter) -> str:
        chain = obj.replay_chain()
        if len(chain) == 1:
            return "-"
        items = format_html_join(
            "",
            '<li{}><a href="{}">#{}</a> {} ({})</li>',
            (
                (
                    format_html(' class="{}"', "current") if link.pk == obj.pk else "",
                    reverse("admin:tasks_deadletter_change", args=[link.pk]),
                    link.pk,
                    link.get_state_display(),
                    link.task_id,
                )
                for link in chain
            ),
        )
        return format_html('<ol class="replay-chain">{}</ol>', items)

    # --- pages ------------------------------------------------------------------------------------
    def get_urls(self):
        own = [
            path("<int:pk>/replay/", self.admin_site.admin_view(self.replay_view), name="tasks_deadletter_replay"),
            path("<int:pk>/discard/", self.admin_site.admin_view(self.discard_view), name="tasks_deadletter_discard"),
        ]
        return own + super().get_urls()

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        row = self.get_object(request, object_id)
        is_open = row is not None and row.state == DeadLetter.State.OPEN
        refusal = deadletters.replay_refusal(row) if row is not None else None
        context = {
            "can_replay": is_open and refusal is None and self.has_replay_permission(request),
            "can_discard": is_open and self.has_discard_permission(request),
            "no_action_reason": (
                f"No action: this dead letter is {row.get_state_display()}."
                if row is not None and not is_open
                else (str(refusal) if refusal else "You may not replay or discard dead letters.")
            ),
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra_context=context)

    def changelist_view(self, request: HttpRequest, extra_context=None):
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

    def _back(self, pk: int) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:tasks_deadletter_change", args=[pk]))

    def replay_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return require_POST(self._replay_one)(request, pk)

    def discard_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return require_POST(self._discard_one)(request, pk)

    def _replay_one(self, request: HttpRequest, pk: int) -> HttpResponse:
        row = get_object_or_404(DeadLetter, pk=pk)
        if not self.has_replay_permission(request):
            self.message_user(request, "You may not replay dead letters.", messages.ERROR)
            return self._back(pk)
        try:
            new_id = deadletters.replay(row, actor=_actor(request))
        except deadletters.ReplayRefused as exc:
            self.message_user(request, f"Not replayed: {exc}", messages.WARNING)
        except (KombuError, OSError) as exc:
            self.message_user(request, f"Not replayed: the broker refused the task ({exc})", messages.ERROR)
        else:
            self.message_user(request, f"Replayed as task {new_id}.", messages.SUCCESS)
        return self._back(pk)

    def _discard_one(self, request: HttpRequest, pk: int) -> HttpResponse:
        row = get_object_or_404(DeadLetter, pk=pk)
        if not self.has_discard_permission(request):
            self.message_user(request, "You may not discard dead letters.", messages.ERROR)
        elif deadletters.discard(row, actor=_actor(request)):
            self.message_user(request, "Discarded.", messages.SUCCESS)
        else:
            self.message_user(request, f"Not discarded: it is {row.get_state_display()}, not open.", messages.WARNING)
        return self._back(pk)

    # --- bulk actions -----------------------------------------------------------------------------
    def _report(self, request: HttpRequest, result: deadletters.BulkResult) -> None:
        for outcome, pks in result.outcomes.items():
            level = messages.SUCCESS if outcome in ("replayed", "discarded") else messages.WARNING
            self.message_user(request, f"{outcome}: {len(pks)} ({', '.join(map(str, pks[:10]))})", level)

    @admin.action(description="Replay selected dead letters", permissions=["replay"])
    def replay_selected(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        rate = float(settings.DEADLETTER_REPLAY_RATE)
        limit = max(1, int(rate * ADMIN_REPLAY_SECONDS)) if rate > 0 else None
        rows = list(queryset.order_by("pk")[: limit + 1] if limit else queryset.order_by("pk"))
        overflow = bool(limit and len(rows) > limit)
        self._report(
            request, deadletters.replay_many(rows[:limit] if limit else rows, actor=_actor(request), rate=rate)
        )
        if overflow:
            self.message_user(
                request,
                f"Replays are throttled to {rate:g}/s: only the first {limit} were sent. Run the action again "
                "for the rest, or use `manage.py deadletters replay`.",
                messages.WARNING,
            )

    @admin.action(description="Discard selected dead letters", permissions=["discard"])
    def discard_selected(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        self._report(request, deadletters.discard_many(queryset.order_by("pk"), actor=_actor(request)))
