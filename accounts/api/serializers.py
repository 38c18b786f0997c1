from django.utils import timezone
from rest_framework import serializers

from accounts import hooks
from accounts.api.fields import StrictCharField
from accounts.choices import Role, Scope
from accounts.models import ApiToken, Membership, ServiceAccount, Tenant


class TenantSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tenant
        fields = ["id", "name", "slug", "is_active", "created_at"]
        read_only_fields = ["id", "is_active", "created_at"]
        # Uniqueness is checked by the service so the message names the slug.
        extra_kwargs = {"slug": {"validators": []}}


class TenantLimitsSerializer(serializers.Serializer):
    """A tenant's own limits (null: the platform's default / no limit)."""

    running_nodes = serializers.IntegerField(min_value=1, allow_null=True, required=False)
    active_runs = serializers.IntegerField(min_value=1, allow_null=True, required=False)


class TenantDetailSerializer(TenantSerializer):
    """A tenant with its fair-share limits and current use (GET/PATCH /tenants/{id}/)."""

    limits = serializers.SerializerMethodField()
    use = serializers.SerializerMethodField()

    class Meta(TenantSerializer.Meta):
        fields = [*TenantSerializer.Meta.fields, "limits", "use"]

    def _use(self, tenant) -> dict:
        cache = self.context.setdefault("use", {})
        if tenant.pk not in cache:
            cache[tenant.pk] = hooks.tenant_use(tenant_id=tenant.pk) or {}
        return cache[tenant.pk]

    def get_limits(self, tenant) -> dict:
        return {"running_nodes": tenant.max_running_nodes, "active_runs": tenant.max_active_runs}

    def get_use(self, tenant) -> dict:
        return self._use(tenant)


class TenantUpdateSerializer(serializers.Serializer):
    limits = TenantLimitsSerializer()


class TenantRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tenant
        fields = ["slug", "name"]


class MembershipSerializer(serializers.ModelSerializer):
    username = StrictCharField(source="user.username", read_only=True)
    # A string, not format "email": people may have none, service accounts never do.
    email = StrictCharField(source="user.email", read_only=True)
    user = serializers.IntegerField(source="user_id", read_only=True)
    tenant = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "username", "email", "tenant", "role", "is_active", "created_at"]
        read_only_fields = fields


class MemberCreateSerializer(serializers.Serializer):
    username = serializers.RegexField(
        r"^[\w.@+-]+\Z", max_length=150, help_text="Letters, digits and @/./+/-/_ only."
    )
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    password = StrictCharField(
        required=False, write_only=True, max_length=128, style={"input_type": "password"}
    )
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


class MemberUpdateSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices, required=False)
    is_active = serializers.BooleanField(required=False)


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = StrictCharField()
    tenant = TenantRefSerializer(allow_null=True)
    role = StrictCharField(allow_null=True)
    memberships = serializers.ListField(child=serializers.DictField())


class TokenRequestSerializer(serializers.Serializer):
    username = StrictCharField(max_length=150)
    password = StrictCharField(
        style={"input_type": "password"}, trim_whitespace=False, max_length=4096
    )


class TokenResponseSerializer(serializers.Serializer):
    token = StrictCharField()
    expires_at = serializers.DateTimeField()


class PasswordChangeSerializer(serializers.Serializer):
    old_password = StrictCharField(trim_whitespace=False, max_length=4096)
    new_password = StrictCharField(trim_whitespace=False, max_length=4096)


class PasswordChangedSerializer(serializers.Serializer):
    detail = StrictCharField()
    tokens_revoked = serializers.IntegerField()


# --------------------------------------------------------------------------- tokens


class ApiTokenSerializer(serializers.ModelSerializer):
    """A token as lists show it: never the secret (only its first characters, `prefix`)."""

    state = serializers.SerializerMethodField()
    created_by = serializers.IntegerField(source="created_by_id", read_only=True, allow_null=True)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "scopes",
            "state",
            "created_at",
            "created_by",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "revoked_reason",
        ]
        read_only_fields = fields

    def get_state(self, obj) -> str:
        return obj.state(timezone.now())


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    """The answer to issuing a token: the only time its secret is shown."""

    token = StrictCharField(read_only=True, help_text="Shown once; store it now.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class ApiTokenCreateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=100)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=Scope.choices), min_length=1, max_length=10
    )
    expires_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="Default: the lifetime set by the operator."
    )


# --------------------------------------------------------------------------- service accounts


class ServiceAccountSerializer(serializers.ModelSerializer):
    username = StrictCharField(source="user.username", read_only=True)
    user = serializers.IntegerField(source="user_id", read_only=True)
    role = serializers.ChoiceField(choices=Role.choices, read_only=True)
    is_active = serializers.BooleanField(read_only=True)
    created_by = serializers.IntegerField(source="created_by_id", read_only=True, allow_null=True)

    class Meta:
        model = ServiceAccount
        fields = [
            "id",
            "name",
            "description",
            "user",
            "username",
            "role",
            "is_active",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields


class ServiceAccountCreateSerializer(serializers.Serializer):
    name = serializers.RegexField(
        r"^[a-z0-9][a-z0-9._-]*\Z",
        max_length=64,
        help_text="Lowercase letters, digits, '.', '_' and '-'.",
    )
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)
    description = StrictCharField(max_length=200, required=False, allow_blank=True)


class ServiceAccountUpdateSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices, required=False)
    is_active = serializers.BooleanField(required=False)
    description = StrictCharField(max_length=200, required=False, allow_blank=True)
