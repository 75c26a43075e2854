"""Admin for fan-out accounting and heartbeats (read-only: the system writes them)."""

from django.contrib import admin

from .models import DispatchBatch, DispatchRun, Heartbeat


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class DispatchBatchInline(admin.TabularInline):
    """Each batch's outcome: how many of its items were stored and which finally failed."""

    model = DispatchBatch
    fields = ("index", "done_count", "failed_count", "failed", "updated_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(DispatchRun)
class DispatchRunAdmin(ReadOnlyAdmin):
    list_display = (
        "schedule",
        "slot",
        "status",
        "planned",
        "done",
        "failed",
        "missing",
        "completeness_pct",
        "batches",
        "note",
    )
    list_filter = ("schedule", "status")
    date_hierarchy = "slot"
    inlines = [DispatchBatchInline]

    @admin.display(description="complete %")
    def completeness_pct(self, obj: DispatchRun) -> str:
        value = obj.completeness
        return "-" if value is None else f"{value:.1f}"


@admin.register(Heartbeat)
class HeartbeatAdmin(ReadOnlyAdmin):
    list_display = ("component", "last_seen", "detail")
