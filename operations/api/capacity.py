"""`GET /api/v1/capacity/`: the request's tenant's fair share, live (the O&M centre polls it)."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.base import IsTenantMember, resolve_request_tenant
from operations.services import slots


class CapacityView(APIView):
    """The tenant's running-node and active-run limits (own or default) and their use, and
    each of its data sources' pools: cap, nodes running and nodes waiting on it."""

    permission_classes = [permissions.IsAuthenticated, IsTenantMember]

    @extend_schema(
        responses=inline_serializer(
            "Capacity",
            {
                "tenant": serializers.DictField(),
                "pools": serializers.ListField(child=serializers.DictField()),
            },
        )
    )
    def get(self, request):
        ctx = resolve_request_tenant(request)
        return Response(
            {"tenant": slots.tenant_use(ctx.tenant.pk), "pools": slots.pool_use(ctx.tenant.pk)}
        )
