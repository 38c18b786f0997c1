"""Django admin for accounts, and the scoping every tenant model's admin inherits.

`TenantScopedAdmin`: the superuser sees everything; a tenant admin sees and changes only
their tenants' rows, an auditor only sees them (accounts/admin_site.py opens the site by
those roles). No admin path sets a field its form does not offer to that viewer: forms
are per viewer, a history revert applies only the fields of the viewer's form to the
current row (and is refused where they may not change the row), bulk actions run only on
rows the viewer may change, and inlines follow the parent's rights.
"""

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.core.exceptions import PermissionDenied
from django.forms.models import model_to_dict
from django.http import Http404
from simple_history.admin import SimpleHistoryAdmin
from simple_history.models import DeletedObject
from simple_history.template_utils import HistoricalRecordContextHelper

from . import services
from .admin_site import request_admin_roles
from .choices import Role
from .models import ApiToken, Membership, ServiceAccount, Tenant, User


def _revert_form(form_class, current):
    """The viewer's form, bound to the current row, showing a historical row's values.

    simple-history builds the revert form on the historical instance, so saving it would
    restore every field, including those the viewer's form hides (a user's is_superuser).
    Here the instance is the current row: only the fields the form offers can change.
    """

    class RevertForm(form_class):
        def __init__(self, data=None, files=None, *args, instance=None, initial=None, **kwargs):
            if data is None and instance is not None:
                # Only for display: the historical values of the fields this form offers.
                offered = [name for name in self.base_fields if not self.base_fields[name].disabled]
                initial = {**model_to_dict(instance, fields=offered), **(initial or {})}
            fresh = type(current)._default_manager.get(pk=current.pk)
            super().__init__(data, files, *args, instance=fresh, initial=initial, **kwargs)

    RevertForm.__name__ = form_class.__name__
    return RevertForm


class _HistoryInWords(HistoricalRecordContextHelper):
    """Changes of a link read in words: simple-history shows a link that was empty as
    "Deleted flow version (pk=None)"; here it is "—", and a related row that was really
    deleted says so in words (the related row's own __str__ names it otherwise)."""

    def prepare_delta_change_value(self, change, value):
        if isinstance(value, DeletedObject):
            if value.pk is None:
                return "—"
            return f"a deleted {value.model._meta.verbose_name} (id {value.pk})"
        return super().prepare_delta_change_value(change, value)


class TenantScopedAdmin(SimpleHistoryAdmin):
    """Superusers see everything; tenant admins change and auditors read their tenants' rows."""

    tenant_field = "tenant"
    # Whether a history revert may be saved (limited to the viewer's form fields).
    revert_allowed = True

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

    def get_historical_record_context_helper(self, request, historical_record):
        return _HistoryInWords(self.model, historical_record)

    # ------------------------------------------------------------------ which tenants

    def admin_tenants(self, request, write: bool = False) -> list[int] | None:
        """Tenants whose rows the viewer sees (write: changes); None means all (superuser)."""
        if request.user.is_superuser:
            return None
        roles = request_admin_roles(request)
        return [t for t, role in roles.items() if not write or role == Role.ADMIN]

    def _scoped(self, request, qs, write: bool):
        tenants = self.admin_tenants(request, write=write)
        if tenants is None:
            return qs
        return qs.filter(**{f"{self.tenant_field}__in": tenants}).distinct()

    def get_queryset(self, request):
        return self._scoped(request, super().get_queryset(request), write=False)

    def _allowed(self, request, obj=None, write: bool = True) -> bool:
        if not request.user.is_active:
            return False
        tenants = self.admin_tenants(request, write=write)
        if tenants is None:
            return True
        if not tenants:
            return False
        if obj is None:
            return True
        base = self.model._default_manager.filter(pk=obj.pk)
        return self._scoped(request, base, write=write).exists()

    def has_module_permission(self, request):
        return self._allowed(request, write=False)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request, obj, write=False)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request, obj)

    def has_add_permission(self, request):
        return self._allowed(request)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request, obj)

    # ------------------------------------------------------------------ bulk actions

    def get_actions(self, request):
        # Every action writes: a viewer who may change nothing gets none.
        if self.admin_tenants(request, write=True) == []:
            return {}
        return super().get_actions(request)

    def response_action(self, request, queryset):
        # Actions run on the selected rows the viewer may change, never on rows they only see.
        return super().response_action(request, self._scoped(request, queryset, write=True))

    # ------------------------------------------------------------------ history revert

    def revert_disabled(self, request, obj=None):
        return not self.revert_allowed or super().revert_disabled(request, obj)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        current = self.get_object(request, unquote(object_id))
        if current is None:
            raise Http404("No such object.")
        if request.method == "POST" and (
            not self.revert_allowed or not self.has_change_permission(request, current)
        ):
            raise PermissionDenied
        request._revert_current = current
        return super().history_form_view(request, object_id, version_id, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change, **kwargs)
        current = getattr(request, "_revert_current", None)
        return _revert_form(form_class, current) if current is not None else form_class

    # ------------------------------------------------------------------ choices

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        tenants = self.admin_tenants(request, write=True)
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
        tenants = self.admin_tenants(request, write=True)
        if tenants is not None and db_field.related_model is User:
            kwargs["queryset"] = User.objects.filter(
                memberships__tenant__in=tenants, memberships__is_active=True
            ).distinct()
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class OperatorOnlyChanges:
    """Rows only the platform superuser changes; tenant admins and auditors read them."""

    def has_change_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser


@admin.register(Tenant)
class TenantAdmin(OperatorOnlyChanges, TenantScopedAdmin):
    """Tenants; the superuser sets their fair-share limits (tenant_set_limits), others read."""

    tenant_field = "pk"
    list_display = ["slug", "name", "is_active", "max_running_nodes", "max_active_runs"]
    search_fields = ["slug", "name"]
    fields = ["name", "slug", "is_active", "max_running_nodes", "max_active_runs"]
    LIMITS = {"max_running_nodes": "running_nodes", "max_active_runs": "active_runs"}

    def save_model(self, request, obj, form, change):
        changed = {f: getattr(obj, f) for f in self.LIMITS if change and f in form.changed_data}
        for name in changed:  # the limits go through their service, with its checks
            setattr(obj, name, form.initial.get(name))
        super().save_model(request, obj, form, change)
        if changed:
            services.tenant_set_limits(
                tenant=obj,
                actor=request.user,
                limits={self.LIMITS[name]: value for name, value in changed.items()},
            )


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
    """Tenant admins change roles and the active flag; adding an existing user is the operator's."""

    form = MembershipForm
    list_display = ["user", "tenant", "role", "is_active"]
    list_filter = ["role", "is_active"]
    search_fields = ["user__username", "tenant__slug"]

    def get_fields(self, request, obj=None):
        return (
            ["user", "tenant", "role"] if obj is None else ["user", "tenant", "role", "is_active"]
        )

    def get_readonly_fields(self, request, obj=None):
        # A membership never moves to another person or tenant.
        return ["user", "tenant"] if obj is not None else []

    def has_add_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            services.member_update(
                membership=obj, actor=request.user, role=data["role"], is_active=data["is_active"]
            )
        else:
            created = services.member_add_existing(
                tenant=data["tenant"], actor=request.user, user=data["user"], role=data["role"]
            )
            obj.pk = obj.id = created.pk
        obj.refresh_from_db()

    def delete_model(self, request, obj):
        services.member_remove(membership=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for membership in queryset:
            services.member_remove(membership=membership, actor=request.user)


class OperatorPasswordForm(AdminPasswordChangeForm):
    """The operator's "change password" form: saved by the service that revokes tokens."""

    def save(self, commit=True):
        user = super().save(commit=False)
        if commit:
            services.user_credentials_save(user=user)
        return user


@admin.register(User)
class UserAdmin(OperatorOnlyChanges, BaseUserAdmin, TenantScopedAdmin):
    """Accounts: tenant admins and auditors read their members'; only the operator changes."""

    tenant_field = "memberships__tenant"
    list_display = ["username", "email", "is_active", "is_staff", "is_superuser"]
    change_password_form = OperatorPasswordForm

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser:
            return fieldsets
        hidden = {"password", "is_superuser", "groups", "user_permissions"}
        return [
            (name, {**opts, "fields": [f for f in opts["fields"] if f not in hidden]})
            for name, opts in fieldsets
        ]

    def save_model(self, request, obj, form, change):
        if not change:
            return super().save_model(request, obj, form, change)
        was_active = User.objects.filter(pk=obj.pk).values_list("is_active", flat=True).first()
        services.user_account_save(actor=request.user, user=obj, was_active=bool(was_active))


class ReadOnlyScopedAdmin(TenantScopedAdmin):
    """Rows that only services write: visible in their tenant, never edited here."""

    revert_allowed = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ServiceAccount)
class ServiceAccountAdmin(ReadOnlyScopedAdmin):
    """Created and changed through the API (role, active): here to be seen with its history."""

    list_display = ["name", "tenant", "user", "created_by", "created_at"]
    list_select_related = ["tenant", "user", "created_by"]
    search_fields = ["name"]


@admin.register(ApiToken)
class ApiTokenAdmin(TenantScopedAdmin):
    """Service-account tokens of the tenant (people's own tokens are theirs: operator only).

    Nothing is edited here; the one action revokes through the same service as the API.
    """

    list_display = ["name", "prefix", "user", "scopes", "expires_at", "last_used_at", "revoked_at"]
    list_select_related = ["user"]
    search_fields = ["name", "prefix", "user__username"]
    exclude = ["key_hash"]
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name != "key_hash"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        for token in queryset:
            services.token_revoke(token=token, actor=request.user)
        self.message_user(request, f"{queryset.count()} token(s) revoked.")
