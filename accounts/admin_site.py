"""The Django admin site: who may use it at all.

The platform superuser uses all of it, and platform staff (`is_staff`, set only by the
superuser) what the superuser granted them through model permissions. A tenant admin uses
their tenant's pages and changes rows there, an auditor reads them: the role of an active
membership opens them, so a tenant admin grants access by giving that role and nothing
beyond it (TenantScopedAdmin in accounts/admin.py limits every page to those tenants).
"""

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.shortcuts import redirect

from .selectors import admin_site_roles


def request_admin_roles(request) -> dict[int, str]:
    """{tenant id: role} for the request's user, computed once per request."""
    if not hasattr(request, "_admin_site_roles"):
        request._admin_site_roles = admin_site_roles(user=request.user)
    return request._admin_site_roles


class TributaryAdminAuthenticationForm(AdminAuthenticationForm):
    def confirm_login_allowed(self, user):
        if user.is_active and not user.is_staff and admin_site_roles(user=user):
            return  # a tenant admin or auditor: their tenant's pages
        super().confirm_login_allowed(user)


class TributaryAdminSite(admin.AdminSite):
    site_header = "Tributary administration"
    site_title = "Tributary admin"
    login_form = TributaryAdminAuthenticationForm

    def has_permission(self, request) -> bool:
        user = request.user
        if not (user.is_authenticated and user.is_active):
            return False
        return user.is_staff or bool(request_admin_roles(request))

    def password_change(self, request, extra_context=None):
        # One way to change one's password, which also revokes one's API tokens.
        return redirect("account-password")
