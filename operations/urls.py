from django.urls import path

from . import grid_views, views

urlpatterns = [
    path("", views.dashboard, name="home"),
    path("runs/", views.run_list, name="run-list"),
    path("runs/<int:pk>/", views.run_detail, name="run-detail"),
    path("runs/grid/", grid_views.run_grid, name="run-grid"),
    path("runs/calendar/<int:flow_id>/", grid_views.run_calendar, name="run-calendar"),
]
