"""Run routes under /api/v1/: runs, a flow's runs, node runs and their logs."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import actions, views

router = SimpleRouter()
router.register("runs", views.RunViewSet, basename="run")
router.register("node-runs", views.NodeRunViewSet, basename="node-run")

urlpatterns = [
    # Before the router, which would read `runs/bulk/` as the run "bulk".
    path("runs/bulk/", actions.RunBulkViewSet.as_view({"post": "create"}), name="run-bulk"),
    *router.urls,
    path(
        "flows/<int:flow_id>/runs/",
        views.FlowRunViewSet.as_view({"get": "list", "post": "create"}),
        name="flow-run-list",
    ),
    path(
        "runs/<int:pk>/rerun/",
        actions.RunActionViewSet.as_view({"post": "rerun"}),
        name="run-rerun",
    ),
    path(
        "runs/<int:pk>/restore/",
        actions.RunActionViewSet.as_view({"post": "restore"}),
        name="run-restore",
    ),
    path(
        "node-runs/<int:pk>/rerun-from/",
        actions.NodeRunActionViewSet.as_view({"post": "rerun_from"}),
        name="node-run-rerun-from",
    ),
    path(
        "node-runs/<int:pk>/mark-success/",
        actions.NodeRunActionViewSet.as_view({"post": "mark_success"}),
        name="node-run-mark-success",
    ),
]
