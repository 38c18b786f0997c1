"""Flow routes under /api/v1/: flows, their nodes, edges, versions, and the tenant audit trail."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("flows", views.FlowViewSet, basename="flow")

nodes = views.NodeViewSet
edges = views.EdgeViewSet
versions = views.FlowVersionViewSet

urlpatterns = [
    *router.urls,
    path(
        "flows/<int:flow_id>/nodes/",
        nodes.as_view({"get": "list", "post": "create"}),
        name="flow-node-list",
    ),
    path(
        "flows/<int:flow_id>/nodes/<int:pk>/",
        nodes.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        name="flow-node-detail",
    ),
    path(
        "flows/<int:flow_id>/edges/",
        edges.as_view({"get": "list", "post": "create"}),
        name="flow-edge-list",
    ),
    path(
        "flows/<int:flow_id>/edges/<int:pk>/",
        edges.as_view({"get": "retrieve", "delete": "destroy"}),
        name="flow-edge-detail",
    ),
    path(
        "flows/<int:flow_id>/versions/", versions.as_view({"get": "list"}), name="flow-version-list"
    ),
    path(
        "flows/<int:flow_id>/versions/<int:number>/",
        versions.as_view({"get": "retrieve"}),
        name="flow-version-detail",
    ),
    path(
        "flows/<int:flow_id>/versions/<int:number>/diff/",
        versions.as_view({"get": "diff"}),
        name="flow-version-diff",
    ),
    path("audit/", views.AuditViewSet.as_view({"get": "list"}), name="audit"),
]
