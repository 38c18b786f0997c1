"""Django admin for runs: read-only records; stop, pause and resume call the same services."""

from django.contrib import admin, messages

from accounts.admin import TenantScopedAdmin
from accounts.errors import ConflictError

from . import services
from .models import FlowRun, NodeRun, OperationRecord, RunEvent


class ReadOnlyTenantAdmin(TenantScopedAdmin):
    """Operational records are written by the engine only."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _run_action(service, verb):
    def act(modeladmin, request, queryset):
        done = 0
        for run in queryset:
            try:
                service(run=run, user=request.user)
                done += 1
            except ConflictError as exc:
                modeladmin.message_user(request, f"Run {run.pk}: {exc.message}", messages.WARNING)
        modeladmin.message_user(request, f"{done} run(s) {verb}.")

    act.short_description = f"{verb.capitalize()} the selected runs"
    act.__name__ = f"run_{verb}"
    return act


class NodeRunInline(admin.TabularInline):
    model = NodeRun
    fields = ["node_name", "node_type", "status", "attempt", "started_at", "finished_at", "error"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(FlowRun)
class FlowRunAdmin(ReadOnlyTenantAdmin):
    list_display = [
        "id",
        "flow",
        "mode",
        "trigger",
        "status",
        "business_time",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "mode", "trigger"]
    search_fields = ["flow__name"]
    list_select_related = ["flow"]
    exclude = ["snapshot"]
    inlines = [NodeRunInline]
    actions = [
        _run_action(services.run_stop, "stopped"),
        _run_action(services.run_pause, "paused"),
        _run_action(services.run_resume, "resumed"),
    ]

    def has_change_permission(self, request, obj=None):
        # Needed for the actions; every field stays read-only.
        return self._allowed(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name != "snapshot"]


@admin.register(NodeRun)
class NodeRunAdmin(ReadOnlyTenantAdmin):
    list_display = ["id", "run", "node_name", "status", "attempt", "started_at", "finished_at"]
    list_filter = ["status", "node_type"]
    search_fields = ["node_name"]


@admin.register(RunEvent)
class RunEventAdmin(ReadOnlyTenantAdmin):
    list_display = ["at", "run", "kind", "user", "message"]
    list_filter = ["kind"]


@admin.register(OperationRecord)
class OperationRecordAdmin(ReadOnlyTenantAdmin):
    """The O&M audit trail (who stopped, restored, reran or backfilled what, and why)."""

    list_display = ["at", "user", "action", "flow_name", "run", "reason"]
    list_filter = ["action"]
    search_fields = ["flow_name", "reason", "user__username"]
    list_select_related = ["user"]
    date_hierarchy = "at"
