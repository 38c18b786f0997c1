"""The one API router: every app's api/urls.py mounted under /api/v1/."""

from django.urls import include, path

from operations.api.capacity import CapacityView
from operations.api.dashboard import DashboardView

api_urlpatterns = [
    path("", include("accounts.api.urls")),
    path("", include("flows.api.urls")),
    path("", include("flows.datasources.api.urls")),
    path("", include("flows.secrets.api.urls")),
    path("", include("flows.webhooks.api.urls")),
    path("", include("flows.lineage.api.urls")),
    path("", include("scheduling.api.urls")),
    # Before operations.api.urls: its router would take runs/grid/ for a run's id.
    path("", include("operations.api.insight_urls")),
    path("", include("operations.api.urls")),
    path("dashboard/", DashboardView.as_view(), name="dashboard"),
    path("capacity/", CapacityView.as_view(), name="capacity"),
]
