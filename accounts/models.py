"""Users, tenants and memberships, plus the abstract base every tenant-owned model uses."""

from django.contrib.auth.models import AbstractUser
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from simple_history.models import HistoricalRecords

from .choices import Role


class User(AbstractUser):
    """A person; belongs to tenants through memberships."""

    default_tenant = models.ForeignKey(
        "accounts.Tenant", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    history = HistoricalRecords(excluded_fields=["password", "last_login"])


class Tenant(models.Model):
    """An isolated organisation: every flow, run and log belongs to exactly one."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(
        max_length=63,
        unique=True,
        validators=[
            RegexValidator(r"^[a-z0-9][a-z0-9-]*$", "Use lowercase letters, digits and -.")
        ],
    )
    is_active = models.BooleanField(default=True)
    # Fair share (README "Limits, pools and priorities"): set by the platform superuser only.
    # Null: the platform's default, a share of the worker slots that are up.
    max_running_nodes = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Nodes of this tenant running at once (empty: the platform's default).",
    )
    max_active_runs = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Runs of this tenant active at once; later ones wait (empty: no limit).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    """A user's role in one tenant."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="membership_unique_user_tenant")
        ]
        indexes = [
            models.Index(fields=["tenant", "role", "is_active"], name="membership_tenant_role")
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant} ({self.role})"


class TenantOwned(models.Model):
    """Abstract base of every tenant-owned model: a required tenant, never null."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")

    class Meta:
        abstract = True


class ServiceAccount(TenantOwned):
    """A non-person account of one tenant for integrations: API tokens only, never pages.

    Its user row carries no usable password (and the sign-in backend refuses it); its role is
    the tenant membership's, so the permission table applies to it as to a person.
    """

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="service_account")
    name = models.CharField(max_length=64)
    description = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="service_account_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.name} @ {self.tenant}"


class ApiToken(models.Model):
    """An API credential of a person or a service account: scoped, expiring, revocable.

    Only a SHA-256 digest of the secret is stored (the secret is random, so a fast digest is
    enough); `prefix` lets people recognise a token in lists. Personal tokens work in every
    tenant their user belongs to (`tenant` is empty); a service account's token carries its
    tenant. Not history-tracked: `last_used_at` churns, and issue and revocation record
    who (`created_by`, `revoked_by`) on the row itself.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=16)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_reason = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "revoked_at"], name="apitoken_user_revoked")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def state(self, now) -> str:
        """active, expired or revoked, as lists show it."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        return "active"
