from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config.monitoring.views import metrics

from .api import api_urlpatterns

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include((api_urlpatterns, "api"), namespace="v1")),
    # The platform operator's Prometheus endpoint (loopback or METRICS_TOKEN), no tenant.
    path("metrics", metrics, name="metrics"),
    path("", include("flows.urls")),
    path("", include("operations.urls")),
    path("", include("accounts.urls")),
]
