"""Django admin for accounts; staff tenant admins see only their own tenants' rows."""

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from simple_history.admin import SimpleHistoryAdmin

from . import services
from .models import Membership, Tenant, User
from .selectors import admin_tenant_ids


class TenantScopedAdmin(SimpleHistoryAdmin):
    """Superusers see everything; a staff tenant admin sees and edits only their tenants' rows."""

    tenant_field = "tenant"

    @property
    def _history_tracked(self) -> bool:
        return hasattr(self.model._meta, "simple_history_manager_attribute")

    def get_urls(self):
        # simple-history's per-version pages need a history table; untracked models (runs,
        # published versions) keep Django's own history page instead of a 500.
        if not self._history_tracked:
            return admin.ModelAdmin.get_urls(self)
        return super().get_urls()

    def history_view(self, request, object_id, extra_context=None):
        if not self._history_tracked:
            return admin.ModelAdmin.history_view(self, request, object_id, extra_context)
        return super().history_view(request, object_id, extra_context)

    def admin_tenants(self, request) -> list[int] | None:
        if request.user.is_superuser:
            return None
        if not hasattr(request, "_admin_tenant_ids"):
            request._admin_tenant_ids = admin_tenant_ids(user=request.user)
        return request._admin_tenant_ids

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        tenants = self.admin_tenants(request)
        if tenants is None:
            return qs
        return qs.filter(**{f"{self.tenant_field}__in": tenants}).distinct()

    def _allowed(self, request, obj=None) -> bool:
        if not request.user.is_active or not request.user.is_staff:
            return False
        tenants = self.admin_tenants(request)
        if tenants is None:
            return True
        if not tenants:
            return False
        if obj is None:
            return True
        return self.get_queryset(request).filter(pk=obj.pk).exists()

    def has_module_permission(self, request):
        return self._allowed(request)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request, obj)

    def has_add_permission(self, request):
        return self._allowed(request)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        tenants = self.admin_tenants(request)
        if tenants is not None:
            model = db_field.related_model
            if model is Tenant:
                kwargs["queryset"] = Tenant.objects.filter(pk__in=tenants)
            elif model is User:
                kwargs["queryset"] = User.objects.filter(
                    memberships__tenant__in=tenants, memberships__is_active=True
                ).distinct()
            elif any(f.name == "tenant" for f in model._meta.get_fields()):
                kwargs["queryset"] = model._default_manager.filter(tenant__in=tenants)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        tenants = self.admin_tenants(request)
        if tenants is not None and db_field.related_model is User:
            kwargs["queryset"] = User.objects.filter(
                memberships__tenant__in=tenants, memberships__is_active=True
            ).distinct()
        return super().formfield_for_manytomany(db_field, request, **kwargs)


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin):
    tenant_field = "pk"
    list_display = ["slug", "name", "is_active", "created_at"]
    search_fields = ["slug", "name"]

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


class MembershipForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["user", "tenant", "role", "is_active"]

    def clean(self):
        data = super().clean()
        if self.instance.pk:
            # The same rule as the API, from the same service function.
            services.check_last_admin(
                membership_pk=self.instance.pk,
                admin_pks=services.active_admin_pks(tenant_id=self.instance.tenant_id),
                new_role=data.get("role", self.instance.role),
                new_active=data.get("is_active", self.instance.is_active),
            )
        return data


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    form = MembershipForm
    list_display = ["user", "tenant", "role", "is_active"]
    list_filter = ["role", "is_active"]
    search_fields = ["user__username", "tenant__slug"]


@admin.register(User)
class UserAdmin(BaseUserAdmin, TenantScopedAdmin):
    tenant_field = "memberships__tenant"
    list_display = ["username", "email", "is_active", "is_staff", "is_superuser"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser:
            return fieldsets
        # A tenant admin can never make anyone a superuser or hand out global permissions.
        hidden = {"is_superuser", "groups", "user_permissions"}
        return [
            (name, {**opts, "fields": [f for f in opts["fields"] if f not in hidden]})
            for name, opts in fieldsets
        ]

    def has_add_permission(self, request):
        return request.user.is_superuser
