"""Admin for secrets (registered from flows/admin.py): writes go through the services, the
value is typed into a write-only field, and history revert is off (the value is never in
the history, so a revert could only restore a name under a different value)."""

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError

from accounts.admin import TenantScopedAdmin
from accounts.choices import Role
from accounts.selectors import TenantContext
from flows.models import Secret

from . import services


class SecretAdminForm(forms.ModelForm):
    """The value is never rendered back; leave it empty to keep the stored one."""

    value = forms.CharField(
        required=False,
        strip=False,
        max_length=services.MAX_VALUE_LENGTH,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only. Leave empty to keep the stored value.",
    )

    class Meta:
        model = Secret
        fields = ["tenant", "name", "flow"]

    def _post_clean(self):
        super()._post_clean()
        if self.errors:
            return
        secret = self.instance
        if secret.flow_id is not None and secret.flow.tenant_id != secret.tenant_id:
            self.add_error("flow", "Choose a flow of the secret's tenant.")
            return
        value = self.cleaned_data.get("value")
        if secret.pk is None and not value:
            self.add_error("value", "A new secret needs a value.")
            return
        # The same rules as the API, from the same service module.
        try:
            services.validate_secret(secret, **({"value": value} if value else {}))
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, messages)


@admin.register(Secret)
class SecretAdmin(TenantScopedAdmin):
    form = SecretAdminForm
    list_display = ["name", "tenant", "flow", "updated_at"]
    list_select_related = ["tenant", "flow"]
    search_fields = ["name"]
    fields = ["tenant", "name", "flow", "value"]

    def get_readonly_fields(self, request, obj=None):
        # The scope is fixed once created (as in the API).
        return ["tenant", "flow"] if obj is not None else []

    def _ctx(self, request, tenant) -> TenantContext:
        # TenantScopedAdmin lets only superusers and the tenant's admins this far.
        return TenantContext(tenant=tenant, user=request.user, role=Role.ADMIN)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            fields = {"name": data["name"]}
            if data.get("value"):
                fields["value"] = data["value"]
            services.secret_update(ctx=self._ctx(request, obj.tenant), secret=obj, **fields)
        else:
            created = services.secret_create(
                ctx=self._ctx(request, data["tenant"]),
                name=data["name"],
                value=data["value"],
                flow=data.get("flow"),
            )
            obj.pk = obj.id = created.pk

    def delete_model(self, request, obj):
        services.secret_delete(ctx=self._ctx(request, obj.tenant), secret=obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)

    def revert_disabled(self, request, obj=None):
        return True

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method == "POST":
            raise PermissionDenied("Secrets cannot be reverted; set a new value instead.")
        return super().history_form_view(request, object_id, version_id, extra_context)
