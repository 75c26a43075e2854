"""Admin for fan-out accounting and heartbeats (read-only: the system writes them)."""

from django.contrib import admin

from backend.tasks.runs import DispatchRun, Heartbeat


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(DispatchRun)
class DispatchRunAdmin(ReadOnlyAdmin):
    list_display = ("schedule", "slot", "status", "planned", "done", "failed", "completeness_pct", "batches")
    list_filter = ("schedule", "status")
    date_hierarchy = "slot"

    @admin.display(description="complete %")
    def completeness_pct(self, obj: DispatchRun) -> str:
        value = obj.completeness
        return "-" if value is None else f"{value:.1f}"


@admin.register(Heartbeat)
class HeartbeatAdmin(ReadOnlyAdmin):
    list_display = ("component", "last_seen", "detail")
