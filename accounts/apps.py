from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class AccountsConfig(AppConfig):
    default = True
    name = "accounts"
    verbose_name = "Accounts and tenants"


class TributaryAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with Tributary's site (accounts/admin_site.py) as `admin.site`."""

    default = False
    default_site = "accounts.admin_site.TributaryAdminSite"
