"""Admin for data sources (registered from flows/admin.py): writes go through the services."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from accounts.admin import TenantScopedAdmin
from accounts.choices import Role
from accounts.selectors import TenantContext
from flows.models import DataSource

from . import selectors, services


class DataSourceAdminForm(forms.ModelForm):
    """The password is typed into a write-only field and never rendered back."""

    password = forms.CharField(
        required=False,
        strip=False,
        max_length=services.MAX_PASSWORD_LENGTH,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only. Leave empty to keep the stored password.",
    )
    clear_password = forms.BooleanField(required=False, help_text="Remove the stored password.")

    class Meta:
        model = DataSource
        fields = [
            "tenant",
            "name",
            "engine",
            "host",
            "port",
            "database",
            "username",
            "options",
            "max_concurrency",
        ]

    def _post_clean(self):
        super()._post_clean()
        if self.errors:
            return
        # The same engine, policy and option rules as the API, from the same service module.
        try:
            services.validate_data_source(self.instance)
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, messages)


@admin.register(DataSource)
class DataSourceAdmin(TenantScopedAdmin):
    form = DataSourceAdminForm
    list_display = [
        "name",
        "tenant",
        "engine",
        "host",
        "port",
        "database",
        "username",
        "has_password",
        "max_concurrency",
    ]
    list_filter = ["engine"]
    search_fields = ["name", "host", "database"]
    fields = [
        "tenant",
        "name",
        "engine",
        "host",
        "port",
        "database",
        "username",
        "password",
        "clear_password",
        "options",
        "max_concurrency",
    ]

    @admin.display(boolean=True, description="password set")
    def has_password(self, obj) -> bool:
        return bool(obj.password_encrypted)

    def get_readonly_fields(self, request, obj=None):
        return ["tenant"] if obj is not None else []

    def _ctx(self, request, tenant) -> TenantContext:
        # TenantScopedAdmin lets only superusers and the tenant's admins this far.
        return TenantContext(tenant=tenant, user=request.user, role=Role.ADMIN)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        fields = {f: data[f] for f in services.FIELDS if f in data}
        password = "" if data.get("clear_password") else (data.get("password") or None)
        if change:
            services.data_source_update(
                ctx=self._ctx(request, obj.tenant), datasource=obj, password=password, **fields
            )
        else:
            created = services.data_source_create(
                ctx=self._ctx(request, data["tenant"]), password=password, **fields
            )
            obj.pk = obj.id = created.pk

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        # Nodes refer to data sources by id inside their configuration: show them as protected.
        protected = list(protected)
        for ds in objs:
            protected += [
                f"Node {name} uses {ds.name}"
                for name in selectors.data_source_references(datasource=ds)
            ]
        return deleted, counts, perms_needed, protected

    def delete_model(self, request, obj):
        services.data_source_delete(ctx=self._ctx(request, obj.tenant), datasource=obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)
