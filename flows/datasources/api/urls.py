"""/api/v1/datasources/: CRUD, POST {id}/test/, GET {id}/history/."""

from rest_framework.routers import SimpleRouter

from .views import DataSourceViewSet

router = SimpleRouter()
router.register("datasources", DataSourceViewSet, basename="datasource")

urlpatterns = [*router.urls]
