"""Admin for flows, nodes, edges and versions (see flows/admin.py).

Staff tenant admins see only their tenants' rows (TenantScopedAdmin). Writes go through
flows.services, with the same validation as the API run in the forms' clean(), so the
admin can neither bypass a rule nor answer a 500.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet

from accounts.admin import TenantScopedAdmin
from accounts.selectors import tenant_member_users

from . import dag, services
from .models import (
    Edge,
    FlowVersion,
    LineageEntry,
    TaskFlow,
    TaskFlowUserObjectPermission,
    TaskNode,
)
from .services.flows import EDITABLE_FIELDS
from .services.graph import NODE_FIELDS
from .services.validation import BRANCHES, has_branches


def _add_errors(form, exc: ValidationError) -> None:
    for field, msgs in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, msgs)


class TaskFlowAdminForm(forms.ModelForm):
    class Meta:
        model = TaskFlow
        fields = ["tenant", "name", "owner", *[f for f in EDITABLE_FIELDS if f != "name"]]

    def clean(self):
        data = super().clean()
        tenant = data.get("tenant") or getattr(self.instance, "tenant", None)
        if tenant is None:
            return data
        probe = TaskFlow(pk=self.instance.pk, tenant=tenant)
        try:
            services.flow_fields_clean(probe, {f: data[f] for f in EDITABLE_FIELDS if f in data})
        except ValidationError as exc:
            _add_errors(self, exc)
        owner = data.get("owner")
        if (
            owner is not None
            and not tenant_member_users(tenant=tenant).filter(pk=owner.pk).exists()
        ):
            self.add_error("owner", "The owner must be an active member of the flow's tenant.")
        return data


class NodeInlineForm(forms.ModelForm):
    class Meta:
        model = TaskNode
        fields = list(NODE_FIELDS)

    def clean(self):
        data = super().clean()
        flow = getattr(self, "parent_flow", None)
        if flow is None or self.errors:
            return data
        probe = TaskNode(
            pk=self.instance.pk,
            tenant_id=flow.tenant_id,
            flow=flow,
            **{f: data.get(f) for f in NODE_FIELDS},
        )
        try:
            services.node_validate(flow=flow, node=probe)
        except ValidationError as exc:
            _add_errors(self, exc)
        return data

    def validate_unique(self):
        # node_validate names a duplicate node name.
        return None


class NodeInlineFormSet(BaseInlineFormSet):
    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        form.parent_flow = self.instance if self.instance.pk else None
        return form


class ScopedInline(admin.TabularInline):
    """Inline rows follow the parent admin's tenant scoping instead of global model perms."""

    def _parent_allows(self, request, obj=None, write: bool = True) -> bool:
        parent = self.admin_site._registry.get(self.parent_model)
        return bool(parent and parent._allowed(request, obj, write=write))

    def has_view_permission(self, request, obj=None):
        return self._parent_allows(request, obj, write=False)

    def has_change_permission(self, request, obj=None):
        return self._parent_allows(request, obj)

    def has_add_permission(self, request, obj=None):
        return self._parent_allows(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._parent_allows(request, obj)


class TaskNodeInline(ScopedInline):
    model = TaskNode
    form = NodeInlineForm
    formset = NodeInlineFormSet
    fields = list(NODE_FIELDS)
    extra = 0


class EdgeInlineFormSet(BaseInlineFormSet):
    def clean(self):
        super().clean()
        if any(self.errors):
            return
        pairs, names = [], {}
        for form in self.forms:
            if (
                not hasattr(form, "cleaned_data")
                or not form.cleaned_data
                or form.cleaned_data.get("DELETE")
            ):
                continue
            up, down = form.cleaned_data.get("upstream"), form.cleaned_data.get("downstream")
            if up is None or down is None:
                continue
            names[up.pk], names[down.pk] = up.name, down.name
            pairs.append((up.pk, down.pk))
            branch = form.cleaned_data.get("branch") or None
            if has_branches(up.type) and branch not in BRANCHES:
                form.add_error("branch", f"Edges leaving {up.name} need a branch: true or false.")
            elif not has_branches(up.type) and branch:
                form.add_error("branch", f"{up.name} is not a branching node; leave branch empty.")
        if len(set(pairs)) != len(pairs):
            raise ValidationError("The same edge appears twice.")
        cycle = dag.find_cycle(names.keys(), pairs)
        if cycle:
            raise ValidationError(f"These edges form a cycle: {dag.format_cycle(cycle, names)}.")


class EdgeInline(ScopedInline):
    model = Edge
    formset = EdgeInlineFormSet
    fk_name = "flow"
    fields = ["upstream", "downstream", "branch"]
    extra = 0

    def get_formset(self, request, obj=None, **kwargs):
        self._parent = obj
        return super().get_formset(request, obj, **kwargs)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name in ("upstream", "downstream"):
            parent = getattr(self, "_parent", None)
            kwargs["queryset"] = (
                TaskNode.objects.filter(flow=parent) if parent else TaskNode.objects.none()
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(TaskFlow)
class TaskFlowAdmin(TenantScopedAdmin):
    form = TaskFlowAdminForm
    list_display = ["name", "tenant", "owner", "status", "is_public", "is_frozen", "updated_at"]
    list_filter = ["status", "is_public", "is_frozen"]
    search_fields = ["name", "business_scenario", "description"]
    list_select_related = ["tenant", "owner"]
    readonly_fields = [
        "status",
        "is_frozen",
        "published_version",
        "stakeholder_names",
        "created_by",
        "created_at",
        "updated_at",
    ]
    inlines = [TaskNodeInline, EdgeInline]

    def get_fields(self, request, obj=None):
        return [*TaskFlowAdminForm.Meta.fields, *self.readonly_fields]

    def get_inline_instances(self, request, obj=None):
        # Nodes and edges are validated against their saved flow: add the flow first.
        return super().get_inline_instances(request, obj) if obj is not None else []

    @admin.display(description="stakeholders")
    def stakeholder_names(self, obj) -> str:
        return ", ".join(str(pk) for pk in services.stakeholder_ids(obj)) or "—"

    def save_model(self, request, obj, form, change):
        fields = {f: form.cleaned_data[f] for f in EDITABLE_FIELDS if f in form.cleaned_data}
        if change:
            flow = services.flow_update(
                flow=TaskFlow.objects.get(pk=obj.pk), user=request.user, **fields
            )
        else:
            flow = services.flow_create(
                tenant=form.cleaned_data["tenant"], user=request.user, **fields
            )
        owner = form.cleaned_data.get("owner")
        if owner is not None and owner.pk != flow.owner_id:
            flow = services.flow_owner_change(flow=flow, user=request.user, owner=owner.pk)
        # The admin goes on with `obj` (inlines, redirects): make it the row the services saved.
        obj.pk = flow.pk
        obj._state.adding = False
        obj.refresh_from_db()

    def delete_model(self, request, obj):
        services.flow_delete(flow=obj, user=request.user)

    def delete_queryset(self, request, queryset):
        for flow in queryset:
            services.flow_delete(flow=flow, user=request.user)

    def save_formset(self, request, form, formset, change):
        flow = form.instance
        formset.save(commit=False)
        try:
            if formset.model is TaskNode:
                for node in formset.deleted_objects:
                    services.node_delete(node=node, user=request.user)
                for node, changed in formset.changed_objects:
                    fields = {f: getattr(node, f) for f in changed if f in NODE_FIELDS}
                    services.node_update(
                        node=TaskNode.objects.get(pk=node.pk), user=request.user, **fields
                    )
                for node in formset.new_objects:
                    services.node_create(
                        flow=flow, user=request.user, **{f: getattr(node, f) for f in NODE_FIELDS}
                    )
            elif formset.model is Edge:
                changed = [edge for edge, _fields in formset.changed_objects]
                for edge in [*formset.deleted_objects, *changed]:
                    stored = Edge.objects.filter(pk=edge.pk).first()
                    if stored is not None:
                        services.edge_delete(edge=stored, user=request.user)
                for edge in [*changed, *formset.new_objects]:
                    services.edge_create(
                        flow=flow,
                        user=request.user,
                        upstream=edge.upstream_id,
                        downstream=edge.downstream_id,
                        branch=edge.branch,
                    )
        except ValidationError as exc:
            self.message_user(request, "; ".join(exc.messages), level=messages.ERROR)


class ReadOnlyScopedAdmin(TenantScopedAdmin):
    """Records that only services write: visible (with their history), never edited here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class LineageInline(ScopedInline):
    """The version's lineage facts, as recorded when it was published (read-only)."""

    model = LineageEntry
    fields = [
        "node_name",
        "node_type",
        "access",
        "datasource",
        "schema",
        "name",
        "depends_on",
        "detail",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(FlowVersion)
class FlowVersionAdmin(ReadOnlyScopedAdmin):
    inlines = [LineageInline]
    list_display = ["flow", "number", "owner", "created_by", "created_at", "comment"]
    list_select_related = ["flow", "owner", "created_by"]
    readonly_fields = [
        "tenant",
        "flow",
        "number",
        "owner",
        "created_by",
        "created_at",
        "comment",
        "snapshot",
    ]
    search_fields = ["flow__name", "comment"]


@admin.register(TaskNode)
class TaskNodeAdmin(ReadOnlyScopedAdmin):
    list_display = ["name", "flow", "type", "tenant"]
    list_select_related = ["flow", "tenant"]
    list_filter = ["type"]
    search_fields = ["name", "flow__name"]


@admin.register(Edge)
class EdgeAdmin(ReadOnlyScopedAdmin):
    list_display = ["id", "flow", "upstream", "downstream", "branch"]
    list_select_related = ["flow", "upstream", "downstream"]


@admin.register(TaskFlowUserObjectPermission)
class FlowGrantAdmin(ReadOnlyScopedAdmin):
    """Owner and stakeholder grants (guardian's direct-FK table); changed through the flow services."""

    tenant_field = "content_object__tenant"
    list_display = ["content_object", "user", "permission"]
    list_select_related = ["content_object", "user", "permission"]
    search_fields = ["content_object__name", "user__username"]
