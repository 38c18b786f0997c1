from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/password/", views.password_change, name="account-password"),
    path("account/tokens/", views.token_list, name="account-tokens"),
    path("tenant/switch/", views.switch_tenant, name="switch-tenant"),
    path("tenant/members/", views.member_list, name="member-list"),
    path("tenant/service-accounts/", views.service_account_list, name="service-account-page"),
    path("tenant/members/<int:pk>/", views.member_update, name="member-update"),
]
