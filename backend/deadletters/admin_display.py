"""What the dead-letter admin shows: its filters, the history inline, list columns and detail blocks.

Kept apart from ``admin`` (permissions, pages, actions) so each stays one job. Every column and block
reads the row only; nothing here changes a dead letter.
"""

from __future__ import annotations

import json

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from backend import deadletters

from .models import DeadLetter, DeadLetterAction

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
        return request.user.has_perm("deadletters.view_deadletter")

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class DeadLetterDisplay:
    """List columns and read-only detail blocks of ``DeadLetterAdmin``."""

    # --- columns ----------------------------------------------------------------------------------
    @admin.display(description="exception", ordering="exception_class")
    def exception_short(self, obj: DeadLetter) -> str:
        name = format_html('<span title="{}">{}</span>', obj.exception_class, obj.exception_name)
        warning = deadletters.replay_warning(obj)
        if not warning:
            return name
        return format_html('{} <span class="replay-warning" title="{}">(permanent)</span>', name, warning)

    @admin.display(description="task", ordering="task_name")
    def task_text(self, obj: DeadLetter) -> str:
        if obj.origin == DeadLetter.Origin.TASK:
            return obj.task_name
        return format_html("{} <small>({})</small>", obj.task_name or "-", obj.get_origin_display())

    @admin.display(description="providers failed")
    def provider_text(self, obj: DeadLetter) -> str:
        return ", ".join(obj.provider_list) or "-"

    @admin.display(description="symbols")
    def symbol_text(self, obj: DeadLetter) -> str:
        return ", ".join(obj.symbol_list[:5]) + (" …" if len(obj.symbol_list) > 5 else "")

    @admin.display(description="state", ordering="state")
    def state_text(self, obj: DeadLetter) -> str:
        return obj.get_state_display() + (" (arguments cut)" if obj.arguments_truncated else "")

    @admin.display(description="last failure", ordering="last_failure_at")
    def last_failure(self, obj: DeadLetter) -> str:
        return format_html(
            '<time datetime="{}">{}</time>', obj.last_failure_at.isoformat(), f"{obj.last_failure_at:%Y-%m-%d %H:%M}"
        )

    @admin.display(description="replay")
    def replay_link(self, obj: DeadLetter) -> str:
        later = DeadLetter.objects.filter(replay_of=obj).only("pk").first()
        if later is not None:
            url = reverse("admin:deadletters_deadletter_change", args=[later.pk])
            return format_html('<a href="{}">failed as #{}</a>', url, later.pk)
        if obj.replay_task_id:
            return format_html('<span title="{}">{}…</span>', obj.replay_task_id, obj.replay_task_id[:8])
        return "-"

    # --- detail fields ----------------------------------------------------------------------------
    @admin.display(description="replay warning")
    def replay_warning_text(self, obj: DeadLetter) -> str:
        return deadletters.replay_warning(obj) or "-"

    @admin.display(description="arguments cut")
    def truncation_note(self, obj: DeadLetter) -> str:
        return deadletters.truncation_text(obj) or "no"

    @admin.display(description="message as it arrived")
    def message_block(self, obj: DeadLetter) -> str:
        if not obj.message:
            return "-"
        # In the order a reader wants them (the database keeps JSON keys in an order of its own).
        order = ["content_type", "content_encoding", "delivery_info", "headers", "headers_truncated"]
        order += ["body_bytes", "body_truncated"]
        shown = {k: obj.message[k] for k in order if k in obj.message}
        shown.update({k: v for k, v in obj.message.items() if k not in shown and k not in ("body", "body_format")})
        return format_html(
            '<pre style="white-space: pre-wrap">{}</pre><p>body ({}):</p><pre style="white-space: pre-wrap">{}</pre>',
            json.dumps(shown, indent=2, ensure_ascii=False),
            obj.message.get("body_format", "text"),
            obj.message.get("body", ""),
        )

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
                    reverse("admin:deadletters_deadletter_change", args=[link.pk]),
                    link.pk,
                    link.get_state_display(),
                    link.task_id,
                )
                for link in chain
            ),
        )
        return format_html('<ol class="replay-chain">{}</ol>', items)
