from django.urls import path

from . import views
from .lineage import views as lineage_views
from .secrets import views as secret_views
from .webhooks import views as webhook_views

urlpatterns = [
    path("flows/", views.flow_list, name="flow-list"),
    path("flows/<int:pk>/", views.flow_detail, name="flow-detail"),
    path("flows/<int:pk>/history/", views.flow_history, name="flow-history"),
    path("audit/", views.audit, name="audit"),
    path("audit/export.csv", views.audit_export, name="audit-export"),
    path("flows/<int:pk>/versions/", views.flow_versions, name="flow-versions"),
    path("flows/<int:pk>/lineage/", lineage_views.flow_lineage, name="flow-lineage"),
    path(
        "flows/<int:pk>/variables/preview/", views.variables_preview, name="flow-variables-preview"
    ),
    path("datasources/", views.datasource_list, name="datasource-list"),
    path("secrets/", secret_views.secret_list, name="secret-list"),
    path("webhooks/", webhook_views.webhook_list, name="webhook-list"),
]
