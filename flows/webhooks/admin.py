"""Admin for webhook subscriptions (registered from flows/admin.py): tenant-scoped like the
other admin classes, writes go through the services, and the signing secret is typed into
a write-only field and never rendered back (history revert is off: it holds no secret)."""

from django import forms
from django.contrib import admin

from accounts.admin import TenantScopedAdmin
from flows.models import WebhookAttempt, WebhookDelivery, WebhookSubscription

from . import EVENT_TYPES, services


class WebhookAdminForm(forms.ModelForm):
    events_choice = forms.MultipleChoiceField(
        label="Events",
        choices=[(e, e) for e in EVENT_TYPES],
        widget=forms.CheckboxSelectMultiple,
    )
    secret = forms.CharField(
        required=False,
        strip=False,
        max_length=200,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only, 16 to 200 characters. Leave empty to keep the stored secret.",
    )

    class Meta:
        model = WebhookSubscription
        fields = ["tenant", "url", "description", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["events_choice"].initial = list(self.instance.events or [])

    def _post_clean(self):
        super()._post_clean()
        if self.errors:
            return
        secret = self.cleaned_data.get("secret")
        if self.instance.pk is None and not secret:
            self.add_error("secret", "A new webhook needs a secret (16 to 200 characters).")
            return
        fields = {
            "url": self.cleaned_data.get("url"),
            "events": list(self.cleaned_data.get("events_choice") or []),
        }
        if secret:
            fields["secret"] = secret
        try:
            services.webhook_validate(**fields)
        except forms.ValidationError as exc:
            for field, messages in exc.message_dict.items():
                target = "events_choice" if field == "events" else field
                self.add_error(target if target in self.fields else None, messages)


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(TenantScopedAdmin):
    form = WebhookAdminForm
    list_display = ["url", "tenant", "is_active", "created_at"]
    list_filter = ["is_active"]
    list_select_related = ["tenant"]
    search_fields = ["url", "description"]
    fields = ["tenant", "url", "events_choice", "description", "is_active", "secret"]
    revert_allowed = False

    def get_readonly_fields(self, request, obj=None):
        return ["tenant"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        fields = {
            "url": data["url"],
            "events": list(data["events_choice"]),
            "description": data.get("description", ""),
        }
        if data.get("secret"):
            fields["secret"] = data["secret"]
        if change:
            services.webhook_update(
                subscription=obj, user=request.user, is_active=data["is_active"], **fields
            )
        else:
            created, _ = services.webhook_create(tenant=data["tenant"], user=request.user, **fields)
            if not data["is_active"]:
                services.webhook_update(subscription=created, user=request.user, is_active=False)
            obj.pk = obj.id = created.pk

    def delete_model(self, request, obj):
        services.webhook_delete(subscription=obj, user=request.user)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ["number", "at", "status_code", "duration_ms", "error"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(TenantScopedAdmin):
    """Deliveries and their attempts, read-only: the worker writes them (the signed body is
    the event as sent; it holds no secret)."""

    list_display = ["created_at", "event_type", "subscription", "status", "attempts"]
    list_filter = ["status", "event_type"]
    list_select_related = ["subscription"]
    search_fields = ["subscription__url", "stream"]
    inlines = [WebhookAttemptInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
