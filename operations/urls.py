from django.urls import path

from . import views

urlpatterns = [
    path("", views.dashboard, name="home"),
    path("runs/", views.run_list, name="run-list"),
    path("runs/<int:pk>/", views.run_detail, name="run-detail"),
]
