"""Thin views of the O&M actions: rerun, restore, rerun from a node, mark a node succeeded."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from accounts.api.base import TenantViewSet
from flows import permissions
from flows.selectors import flow_get
from operations import selectors
from operations.models import FlowRun, NodeRun
from operations.services import control

from .serializers import RunDetailSerializer


class RunActionViewSet(TenantViewSet):
    """POST /runs/{id}/rerun/ and /runs/{id}/restore/ (OPERATE on the run's flow)."""

    queryset = FlowRun.objects.none()
    serializer_class = RunDetailSerializer

    def scoped_queryset(self):
        return selectors.run_list(ctx=self.ctx)

    def _run(self) -> FlowRun:
        run = self.get_object()
        flow_get(ctx=self.ctx, flow_id=run.flow_id, action=permissions.OPERATE)
        return run

    @extend_schema(request=None, responses={201: RunDetailSerializer})
    def rerun(self, request, pk=None):
        """A new run with the version (or snapshot) this run used."""
        new = control.run_rerun(run=self._run(), user=request.user)
        return Response(RunDetailSerializer(new).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: RunDetailSerializer})
    def restore(self, request, pk=None):
        """Rerun the failed, stopped and not-run nodes of this finished run."""
        run = control.run_restore(run=self._run(), user=request.user)
        return Response(RunDetailSerializer(run).data)


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

    @extend_schema(request=None, responses={200: RunDetailSerializer})
    def rerun_from(self, request, pk=None):
        """Rerun this node and its descendants in its finished run."""
        run = control.node_rerun_from(node_run=self._node_run(), user=request.user)
        return Response(RunDetailSerializer(run).data)

    @extend_schema(request=None, responses={200: RunDetailSerializer})
    def mark_success(self, request, pk=None):
        """Count this failed node as succeeded; its downstream continues."""
        run = control.node_mark_success(node_run=self._node_run(), user=request.user)
        return Response(RunDetailSerializer(run).data)
