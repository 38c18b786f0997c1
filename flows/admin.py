"""Django admin for flows; the modules below each register their own models."""

from . import admin_datasources, admin_flows  # noqa: F401
