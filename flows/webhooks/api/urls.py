"""/api/v1/webhooks/: CRUD, {id}/deliveries/ and {id}/deliveries/{delivery id}/redeliver/."""

from rest_framework.routers import SimpleRouter

from .views import WebhookViewSet

router = SimpleRouter()
router.register("webhooks", WebhookViewSet, basename="webhook")

urlpatterns = [*router.urls]
