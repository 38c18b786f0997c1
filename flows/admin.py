"""Django admin for flows; the modules below each register their own models."""

from . import admin_flows  # noqa: F401
from .datasources import admin as datasources_admin  # noqa: F401
from .secrets import admin as secrets_admin  # noqa: F401
from .webhooks import admin as webhooks_admin  # noqa: F401
