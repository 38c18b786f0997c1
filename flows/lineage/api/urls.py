"""Lineage routes under /api/v1/."""

from django.urls import path

from .views import FlowLineageView, TableLineageView

urlpatterns = [
    path("lineage/", TableLineageView.as_view(), name="lineage"),
    path("flows/<int:flow_id>/lineage/", FlowLineageView.as_view(), name="flow-lineage"),
]
