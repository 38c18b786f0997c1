"""Thin views of the O&M actions: rerun, restore, rerun from a node, mark a node succeeded,
and the bulk request that applies a run action to many runs. Every body takes an optional
`reason`, kept in the tenant's audit trail."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from accounts.api.base import TenantViewSet
from accounts.api.exceptions import exception_handler
from flows import permissions
from flows.selectors import flow_get
from operations import selectors
from operations.models import FlowRun, NodeRun
from operations.services import bulk, control

from .serializers import (
    BulkAnswerSerializer,
    BulkSerializer,
    ReasonSerializer,
    RunDetailSerializer,
)
from .views import reason_of


class RunActionViewSet(TenantViewSet):
    """POST /runs/{id}/rerun/ and /runs/{id}/restore/ (OPERATE on the run's flow)."""

    queryset = FlowRun.objects.none()
    serializer_class = RunDetailSerializer

    def scoped_queryset(self):
        return selectors.run_list(ctx=self.ctx)

    def _act(self, name: str) -> FlowRun:
        return bulk.run_act(
            ctx=self.ctx,
            run_id=self.kwargs["pk"],
            action=name,
            user=self.request.user,
            reason=reason_of(self.request),
        )

    @extend_schema(request=ReasonSerializer, responses={201: RunDetailSerializer})
    def rerun(self, request, pk=None):
        """A new run with the version (or snapshot) this run used."""
        new = self._act("rerun")
        return Response(RunDetailSerializer(new).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ReasonSerializer, responses={200: RunDetailSerializer})
    def restore(self, request, pk=None):
        """Rerun the failed, stopped and not-run nodes of this finished run."""
        return Response(RunDetailSerializer(self._act("restore")).data)


class RunBulkViewSet(TenantViewSet):
    """POST /runs/bulk/: one run action on many runs, each exactly as it would go alone."""

    queryset = FlowRun.objects.none()
    serializer_class = BulkSerializer

    def scoped_queryset(self):
        return selectors.run_list(ctx=self.ctx)

    def _refusal(self, exc: Exception) -> tuple[int, dict]:
        # The answer the single action's view would have given: the API's own handler.
        response = exception_handler(exc, {"view": self, "request": self.request})
        return response.status_code, dict(response.data)

    @extend_schema(request=BulkSerializer, responses={200: BulkAnswerSerializer})
    def create(self, request):
        data = request.data if isinstance(request.data, dict) else None
        if data is None:
            return Response(
                {"non_field_errors": ["Send a JSON object."]}, status=status.HTTP_400_BAD_REQUEST
            )
        results = bulk.runs_bulk(
            ctx=self.ctx,
            user=request.user,
            action=data.get("action"),
            runs=data.get("runs"),
            reason=data.get("reason", ""),
            refusal=self._refusal,
        )
        done = sum(1 for r in results if r["result"] == "done")
        return Response(
            {
                "action": data.get("action"),
                "done": done,
                "refused": len(results) - done,
                "results": results,
            }
        )


class NodeRunActionViewSet(TenantViewSet):
    """POST /node-runs/{id}/rerun-from/ and /node-runs/{id}/mark-success/; answers the run."""

    queryset = NodeRun.objects.none()
    serializer_class = RunDetailSerializer

    def scoped_queryset(self):
        return selectors.node_run_list(ctx=self.ctx)

    def _node_run(self) -> NodeRun:
        node_run = self.get_object()
        flow_get(ctx=self.ctx, flow_id=node_run.run.flow_id, action=permissions.OPERATE)
        return node_run

    @extend_schema(request=ReasonSerializer, responses={200: RunDetailSerializer})
    def rerun_from(self, request, pk=None):
        """Rerun this node and its descendants in its finished run."""
        run = control.node_rerun_from(
            node_run=self._node_run(), user=request.user, reason=reason_of(request)
        )
        return Response(RunDetailSerializer(run).data)

    @extend_schema(request=ReasonSerializer, responses={200: RunDetailSerializer})
    def mark_success(self, request, pk=None):
        """Count this failed node as succeeded; its downstream continues."""
        run = control.node_mark_success(
            node_run=self._node_run(), user=request.user, reason=reason_of(request)
        )
        return Response(RunDetailSerializer(run).data)
