"""Task flows, their nodes and edges, published versions, data sources and secrets."""

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase
from simple_history.models import HistoricalRecords

from accounts.models import TenantOwned

from .choices import (
    Branch,
    ConcurrencyPolicy,
    Engine,
    ErrorPolicy,
    FlowStatus,
    LineageAccess,
    TriggerRule,
)
from .datasources import crypto


class IndexedHistoricalRecords(HistoricalRecords):
    """History tables also indexed by (object id, history id).

    The audit timeline reads each entry's predecessor (same object, previous history id);
    without this index that lookup scans the object's whole history for every entry on
    the page, which at 20,000 changes of one flow took a third of a second per page.
    """

    def get_meta_options(self, model):
        meta = super().get_meta_options(model)
        name = f"hist_{model._meta.model_name[:18]}_prev"
        meta["indexes"] = (
            *meta.get("indexes", ()),
            models.Index(fields=[model._meta.pk.attname, "history_id"], name=name),
        )
        return meta


class DataSource(TenantOwned):
    """A database registered by a tenant; its password is encrypted at rest and write-only."""

    name = models.CharField(max_length=100)
    engine = models.CharField(max_length=16, choices=Engine.choices)
    host = models.CharField(max_length=255, blank=True, default="")
    port = models.PositiveIntegerField(null=True, blank=True)
    database = models.CharField(
        max_length=255, help_text="Database name (or file path for SQLite)."
    )
    username = models.CharField(max_length=150, blank=True, default="")
    password_encrypted = models.TextField(blank=True, default="", editable=False)
    options = models.JSONField(default=dict, blank=True)
    # The data source's pool: nodes running on it at once (null: no cap); more wait.
    max_concurrency = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Nodes running on this database at once (empty: no cap).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = IndexedHistoricalRecords(excluded_fields=["password_encrypted"])

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name"], name="datasource_unique_name_per_tenant"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def password(self) -> str:
        return crypto.decrypt(self.password_encrypted)

    @password.setter
    def password(self, value: str) -> None:
        self.password_encrypted = crypto.encrypt(value or "")


class TaskFlow(TenantOwned):
    """A DAG of task nodes: the editing version lives here, published ones in FlowVersion."""

    name = models.CharField(max_length=128)
    business_scenario = models.CharField(max_length=128, blank=True, default="")
    description = models.TextField(blank=True, default="", max_length=4000)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_flows"
    )
    error_policy = models.CharField(
        max_length=32, choices=ErrorPolicy.choices, default=ErrorPolicy.COMPLETE_RUNNING
    )
    concurrency_policy = models.CharField(
        max_length=32, choices=ConcurrencyPolicy.choices, default=ConcurrencyPolicy.SKIP
    )
    is_public = models.BooleanField(default=False)
    # [{"name", "type": "constant"|"time", "value" | "format", "offset"}]
    variables = models.JSONField(default=list, blank=True)
    # Run parameters: [{"name", "type", "required", "default", "choices", "description"}]
    # (flows.parameters); a run's values are FlowRun.parameters.
    parameters = models.JSONField(default=list, blank=True)
    # {"on_failure": true, "on_success": false, "emails": [...], "webhooks": [...], "max_duration_s": null}
    notifications = models.JSONField(default=dict, blank=True)
    # When a run should be done: {"after_fire_s": N} after its fire time, {"at": "HH:MM"} on
    # the fire time's date in the schedule's zone (the next day's when that has passed), or
    # null. Frozen into each published version with the rest of the configuration.
    deadline = models.JSONField(null=True, blank=True, default=None)
    status = models.CharField(max_length=16, choices=FlowStatus.choices, default=FlowStatus.DRAFT)
    is_frozen = models.BooleanField(default=False)
    published_version = models.ForeignKey(
        "flows.FlowVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Bumped by every editing service; compared with published_revision to tell unpublished changes.
    edit_revision = models.PositiveIntegerField(default=0)
    published_revision = models.PositiveIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = IndexedHistoricalRecords(
        excluded_fields=["updated_at", "edit_revision", "published_revision"]
    )

    class Meta:
        ordering = ["-id"]
        permissions = [("operate_taskflow", "Test-run the flow and operate its runs")]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name"], name="taskflow_unique_name_per_tenant"
            )
        ]
        indexes = [
            # The id in each index lets the visibility UNION (public ∪ owned ∪ granted) and
            # the page's COUNT be answered from the indexes alone, and a page be read in
            # -id order within the tenant without sorting (flows.permissions).
            models.Index(fields=["tenant", "-id"], name="taskflow_tenant_id"),
            models.Index(fields=["tenant", "owner", "id"], name="taskflow_tenant_owner_id"),
            models.Index(fields=["tenant", "is_public", "id"], name="taskflow_tenant_public_id"),
            models.Index(fields=["tenant", "status"], name="taskflow_tenant_status"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_unpublished_changes(self) -> bool:
        return self.published_revision != self.edit_revision


class TaskFlowUserObjectPermission(UserObjectPermissionBase):
    """Direct-FK guardian grants on flows (owner and stakeholders)."""

    content_object = models.ForeignKey(TaskFlow, on_delete=models.CASCADE)
    history = IndexedHistoricalRecords()

    class Meta(UserObjectPermissionBase.Meta):
        # guardian's unique (user, permission, content_object) already indexes the
        # visibility lookup (user + permission → flow ids); a second identical index only
        # slowed every grant write.
        pass


class TaskFlowGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(TaskFlow, on_delete=models.CASCADE)

    class Meta(GroupObjectPermissionBase.Meta):
        pass


class TaskNode(TenantOwned):
    """One task of a flow's editing version; `type` names a module of flows.nodes."""

    flow = models.ForeignKey(TaskFlow, on_delete=models.CASCADE, related_name="nodes")
    name = models.CharField(max_length=128)
    type = models.CharField(max_length=32)
    config = models.JSONField(default=dict, blank=True)
    position_x = models.FloatField(default=0)
    position_y = models.FloatField(default=0)
    retries = models.PositiveSmallIntegerField(default=0)
    retry_interval = models.PositiveIntegerField(default=60, help_text="Seconds between attempts.")
    timeout = models.PositiveIntegerField(default=3600, help_text="Seconds; enforced per attempt.")
    priority = models.SmallIntegerField(default=0)
    # The node's own variables, shaped like the flow's; they override the flow's for this node.
    variables = models.JSONField(default=list, blank=True)
    # When the node runs, given its upstreams' outcomes (the engine's trigger rules).
    trigger_rule = models.CharField(
        max_length=16, choices=TriggerRule.choices, default=TriggerRule.ALL_SUCCESS
    )
    # A disabled node is not executed; its downstream nodes take it as succeeded.
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = IndexedHistoricalRecords()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["flow", "name"], name="tasknode_unique_name_per_flow")
        ]

    def __str__(self) -> str:
        return self.name


class Edge(TenantOwned):
    """upstream → downstream inside one flow; edges leaving a condition carry a branch."""

    flow = models.ForeignKey(TaskFlow, on_delete=models.CASCADE, related_name="edges")
    upstream = models.ForeignKey(TaskNode, on_delete=models.CASCADE, related_name="out_edges")
    downstream = models.ForeignKey(TaskNode, on_delete=models.CASCADE, related_name="in_edges")
    branch = models.CharField(max_length=8, choices=Branch.choices, null=True, blank=True)
    history = IndexedHistoricalRecords()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["upstream", "downstream"], name="edge_unique_pair"),
            models.CheckConstraint(
                condition=~models.Q(upstream=models.F("downstream")), name="edge_no_self_loop"
            ),
        ]


class FlowVersion(TenantOwned):
    """An immutable published snapshot: configuration, nodes, edges, variables, schedule, owner."""

    flow = models.ForeignKey(TaskFlow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    snapshot = models.JSONField()
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    comment = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["flow", "number"], name="flowversion_unique_number")
        ]

    def __str__(self) -> str:
        # In words, as the admin's history of a flow shows its published version.
        return f"version {self.number} of “{self.flow.name}”"

    def save(self, *args, **kwargs):
        # A published version is a record of what ran; rewriting it would falsify history.
        if not self._state.adding:
            raise FlowVersionImmutable("A published flow version cannot be changed.")
        super().save(*args, **kwargs)


class FlowVersionImmutable(Exception):
    """Raised when code tries to update a saved FlowVersion."""


class Secret(TenantOwned):
    """A named value referenced as ``${secret.NAME}`` in node configurations: encrypted at
    rest, write-only everywhere, resolved only by the worker running the node.

    Tenant-wide when `flow` is empty, else usable by that flow only (and then it wins over
    a tenant-wide secret of the same name).
    """

    name = models.CharField(max_length=64)
    flow = models.ForeignKey(
        TaskFlow, null=True, blank=True, on_delete=models.CASCADE, related_name="secrets"
    )
    value_encrypted = models.TextField(editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The value never enters the audit trail; a change of it shows as a change of updated_at.
    history = IndexedHistoricalRecords(excluded_fields=["value_encrypted"])

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name"],
                condition=models.Q(flow__isnull=True),
                name="secret_unique_name_per_tenant",
                violation_error_message="A secret of this name exists for this tenant.",
            ),
            models.UniqueConstraint(
                fields=["flow", "name"],
                condition=models.Q(flow__isnull=False),
                name="secret_unique_name_per_flow",
                violation_error_message="A secret of this name exists for this flow.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def value(self) -> str:
        return crypto.decrypt(self.value_encrypted)

    @value.setter
    def value(self, plaintext: str) -> None:
        self.value_encrypted = crypto.encrypt(plaintext)


class LineageEntry(TenantOwned):
    """One fact of a published version's lineage: a node reads or writes a table, waits for
    another flow (dependency check), or has SQL the parser could not read (`detail` says).

    Written once when the version is published (flows.lineage.services); versions are
    immutable, so are these rows. A flow's lineage is that of its latest published version.
    """

    version = models.ForeignKey(FlowVersion, on_delete=models.CASCADE, related_name="lineage")
    # Denormalised from the version: the lineage queries join flows on their published version.
    flow = models.ForeignKey(TaskFlow, on_delete=models.CASCADE, related_name="+", db_index=False)
    node_id = models.BigIntegerField()
    node_name = models.CharField(max_length=128)
    node_type = models.CharField(max_length=32)
    access = models.CharField(max_length=8, choices=LineageAccess.choices)
    datasource = models.ForeignKey(
        DataSource, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The table as its engine resolves it (see flows.lineage.sql); empty for other facts.
    schema = models.CharField(max_length=255, blank=True, default="")
    name = models.CharField(max_length=255, blank=True, default="")
    # The flow a dependency check waits for (no foreign key: it may be deleted later).
    depends_on = models.BigIntegerField(null=True, blank=True)
    detail = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["version", "access"], name="lineage_version_access"),
            models.Index(fields=["tenant", "name", "access"], name="lineage_tenant_name"),
            models.Index(fields=["tenant", "depends_on"], name="lineage_tenant_depends"),
        ]

    def __str__(self) -> str:
        target = f"{self.schema}.{self.name}" if self.name else self.detail or self.depends_on
        return f"{self.node_name} {self.access} {target}"


class WebhookSubscription(TenantOwned):
    """A tenant's URL subscribed to platform events, signed with its secret (flows.webhooks)."""

    url = models.CharField(max_length=2000)
    # Event types (flows.webhooks.EVENT_TYPES) this URL receives.
    events = models.JSONField(default=list)
    # The signing secret, encrypted like data source passwords; shown once when created.
    secret_encrypted = models.TextField(editable=False)
    description = models.CharField(max_length=200, blank=True, default="")
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = IndexedHistoricalRecords(excluded_fields=["secret_encrypted", "updated_at"])

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["tenant", "is_active"], name="webhook_tenant_active")]

    def __str__(self) -> str:
        return self.url

    @property
    def secret(self) -> str:
        return crypto.decrypt(self.secret_encrypted)

    @secret.setter
    def secret(self, value: str) -> None:
        self.secret_encrypted = crypto.encrypt(value)


class WebhookDelivery(TenantOwned):
    """One event for one subscription: the exact body it signs, delivered at least once.

    Deliveries of one `stream` (a run, a flow, a schedule) reach a subscription in the order
    they were created. Operational records: no history.
    """

    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=32)
    stream = models.CharField(max_length=64)
    body = models.TextField()
    # pending -> sending -> delivered | pending (retry) | failed (attempts exhausted)
    status = models.CharField(max_length=16, default="pending")
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["subscription", "stream", "id"], name="whdelivery_stream"),
            models.Index(fields=["status", "next_attempt_at"], name="whdelivery_due"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} to subscription {self.subscription_id} ({self.status})"


class WebhookAttempt(TenantOwned):
    """One POST of a delivery, with what the subscriber answered."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="tries")
    number = models.PositiveSmallIntegerField()
    at = models.DateTimeField(auto_now_add=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["delivery_id", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}"
