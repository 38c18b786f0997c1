"""Routes of the O&M overviews: the grid and a flow's duration trends.

Mounted before operations.api.urls, whose router would read `runs/grid/` as the run "grid".
"""

from django.urls import path

from . import grid, stats

urlpatterns = [
    path("runs/grid/", grid.RunGridView.as_view(), name="run-grid"),
    path("flows/<int:flow_id>/stats/", stats.FlowStatsView.as_view(), name="flow-stats"),
]
