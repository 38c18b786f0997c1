"""Django admin for schedules (through the same services as the API) and the firing ledger."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from accounts.admin import TenantScopedAdmin

from . import services
from .models import Schedule, ScheduleFiring
from .spec import build_spec

_SPEC_FIELDS = ("kind", "cron", "interval", "time", "days", "start_date", "end_date", "timezone")


class ScheduleAdminForm(forms.ModelForm):
    class Meta:
        model = Schedule
        fields = ["flow", "enabled", *_SPEC_FIELDS]

    def clean(self):
        data = super().clean()
        if not self.errors:
            try:
                build_spec(**{f: data.get(f) for f in _SPEC_FIELDS})
            except ValidationError as exc:
                self.add_error(None, exc)
        return data


@admin.register(Schedule)
class ScheduleAdmin(TenantScopedAdmin):
    form = ScheduleAdminForm
    list_display = ("flow", "enabled", "cron", "timezone", "start_date", "end_date", "active_since")
    list_filter = ("enabled", "kind")
    search_fields = ("flow__name", "cron")
    list_select_related = ("flow",)

    def get_readonly_fields(self, request, obj=None):
        return ("flow",) if obj is not None else ()

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        saved = services.schedule_save(
            flow=obj.flow,
            user=request.user,
            enabled=data.get("enabled", obj.enabled),
            **{f: data.get(f) for f in _SPEC_FIELDS},
        )
        obj.pk = saved.pk
        obj.refresh_from_db()

    def delete_model(self, request, obj):
        services.schedule_delete(schedule=obj, user=request.user)

    def delete_queryset(self, request, queryset):
        for schedule in queryset:
            services.schedule_delete(schedule=schedule, user=request.user)


@admin.register(ScheduleFiring)
class ScheduleFiringAdmin(TenantScopedAdmin):
    """Read-only: which fire times fired which run, and how late."""

    list_display = ("flow", "fire_time", "source", "run_id", "lateness", "fired_at")
    list_filter = ("source",)
    list_select_related = ("flow",)
    date_hierarchy = "fire_time"

    # No HistoricalRecords on this append-only ledger: Django's plain history page.
    object_history_template = None

    def history_view(self, request, object_id, extra_context=None):
        return admin.ModelAdmin.history_view(self, request, object_id, extra_context)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
