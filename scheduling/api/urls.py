from django.urls import path

from .distribution import ScheduleDistributionView
from .views import ScheduleViewSet

schedule = ScheduleViewSet.as_view({"get": "retrieve", "put": "update"})
preview = ScheduleViewSet.as_view({"get": "preview"})
missed = ScheduleViewSet.as_view({"get": "missed"})

urlpatterns = [
    path("flows/<int:flow_id>/schedule/", schedule, name="flow-schedule"),
    path("flows/<int:flow_id>/schedule/preview/", preview, name="flow-schedule-preview"),
    path("flows/<int:flow_id>/schedule/missed/", missed, name="flow-schedule-missed"),
    path(
        "schedules/distribution/",
        ScheduleDistributionView.as_view(),
        name="schedule-distribution",
    ),
]
