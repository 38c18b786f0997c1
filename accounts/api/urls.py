from django.urls import path
from rest_framework.routers import SimpleRouter

from . import tokens, views

router = SimpleRouter()
router.register("tenants", views.TenantAPIViewSet, basename="tenant")
router.register("members", views.MemberViewSet, basename="member")
router.register("me/tokens", tokens.MyTokenViewSet, basename="me-token")
router.register("service-accounts", tokens.ServiceAccountViewSet, basename="service-account")

sa_tokens = tokens.ServiceAccountTokenViewSet

urlpatterns = [
    path("auth/token/", views.TokenView.as_view(), name="auth-token"),
    path("me/", views.MeView.as_view(), name="me"),
    path("me/password/", tokens.PasswordChangeView.as_view(), name="me-password"),
    path(
        "service-accounts/<int:service_account_id>/tokens/",
        sa_tokens.as_view({"get": "list", "post": "create"}),
        name="service-account-token-list",
    ),
    path(
        "service-accounts/<int:service_account_id>/tokens/<int:pk>/",
        sa_tokens.as_view({"get": "retrieve", "delete": "destroy"}),
        name="service-account-token-detail",
    ),
    *router.urls,
]
