"""Thin API views for runs: parse, call a selector or a service, shape the answer."""

from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.api.base import TenantViewSet
from flows import permissions
from flows.selectors import flow_get
from operations import selectors, services
from operations.models import FlowRun, NodeRun
from operations.services import bulk, idempotency

from .serializers import (
    BackfillPlanSerializer,
    NodeRunLogSerializer,
    NodeRunSerializer,
    ReasonSerializer,
    RunCreateSerializer,
    RunDetailSerializer,
    RunFilterSerializer,
    RunSerializer,
    TimeRangeRunsSerializer,
)


def reason_of(request) -> str | None:
    """The `reason` of an O&M action's body (the service checks it, naming the field)."""
    serializer = ReasonSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data.get("reason", "")


def _filters(request) -> dict:
    serializer = RunFilterSerializer(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


RUN_FILTER_PARAMETERS = [RunFilterSerializer]


class FlowRunViewSet(mixins.ListModelMixin, TenantViewSet):
    """/flows/{flow_id}/runs/: the runs of one flow; POST starts a test run."""

    serializer_class = RunSerializer
    queryset = FlowRun.objects.none()

    def scoped_queryset(self):
        flow = flow_get(ctx=self.ctx, flow_id=self.kwargs["flow_id"])
        return selectors.run_list(ctx=self.ctx, filters={**_filters(self.request), "flow": flow.pk})

    @extend_schema(parameters=RUN_FILTER_PARAMETERS)
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=RunCreateSerializer,
        parameters=[
            OpenApiParameter(
                idempotency.HEADER,
                str,
                location=OpenApiParameter.HEADER,
                required=False,
                description="Makes a retried request harmless: the same key from the same "
                "tenant within 24 hours answers 200 with the runs the first request created "
                "(and creates nothing); the same key with a different body is a 409.",
            )
        ],
        responses={
            201: PolymorphicProxySerializer(
                "RunCreated", [RunDetailSerializer, TimeRangeRunsSerializer], None
            ),
            200: PolymorphicProxySerializer(
                "RunReplayedOrPlanned",
                [RunDetailSerializer, TimeRangeRunsSerializer, BackfillPlanSerializer],
                None,
            ),
            403: OpenApiResponse(
                description="The user may not run this flow, or (downstream_flows) one of the "
                "flows that depend on it: the message names them."
            ),
            409: OpenApiResponse(description="The Idempotency-Key was used for another request."),
        },
    )
    def create(self, request, flow_id=None):
        flow = flow_get(ctx=self.ctx, flow_id=flow_id, action=permissions.OPERATE)
        serializer = RunCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = {"reason": "", **serializer.validated_data}

        def start():
            return services.run_start(flow=flow, user=request.user, ctx=self.ctx, **data)

        key = request.headers.get(idempotency.HEADER)
        replayed = False
        if data.get("plan_only"):
            # A plan creates nothing, so there is nothing to replay: no key is stored.
            return Response(BackfillPlanSerializer(start()).data, status=status.HTTP_200_OK)
        if key is None:
            result = start()
        else:
            result, replayed = idempotency.run_start_once(
                key=key, flow=flow, user=request.user, body=data, start=start
            )
        if isinstance(result, list):
            body = TimeRangeRunsSerializer({"runs": result}).data
        else:
            body = RunDetailSerializer(result).data
        return Response(body, status=status.HTTP_200_OK if replayed else status.HTTP_201_CREATED)


class RunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """/runs/: every run the user may see; stop, pause and resume for those who may operate."""

    queryset = FlowRun.objects.none()

    def get_serializer_class(self):
        return RunSerializer if self.action == "list" else RunDetailSerializer

    def scoped_queryset(self):
        filters = _filters(self.request) if self.action == "list" else {}
        return selectors.run_list(ctx=self.ctx, filters=filters)

    @extend_schema(parameters=RUN_FILTER_PARAMETERS)
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def _act(self, name: str):
        run = bulk.run_act(
            ctx=self.ctx,
            run_id=self.kwargs["pk"],
            action=name,
            user=self.request.user,
            reason=reason_of(self.request),
        )
        return Response(RunDetailSerializer(run).data)

    @extend_schema(request=ReasonSerializer, responses={200: RunDetailSerializer})
    @action(detail=True, methods=["post"])
    def stop(self, request, pk=None):
        return self._act("stop")

    @extend_schema(request=ReasonSerializer, responses={200: RunDetailSerializer})
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        return self._act("pause")

    @extend_schema(request=ReasonSerializer, responses={200: RunDetailSerializer})
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._act("resume")


class NodeRunViewSet(mixins.RetrieveModelMixin, TenantViewSet):
    """/node-runs/{id}/: one attempt of a node; its log while it runs."""

    queryset = NodeRun.objects.none()
    serializer_class = NodeRunSerializer

    def scoped_queryset(self):
        return selectors.node_run_list(ctx=self.ctx)

    @extend_schema(responses={200: NodeRunLogSerializer})
    @action(detail=True, methods=["get"])
    def log(self, request, pk=None):
        return Response(NodeRunLogSerializer(self.get_object()).data)
