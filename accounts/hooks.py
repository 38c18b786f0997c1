"""Extension points of accounts: calls into the apps built on it, which accounts must not import.

`Hook` is the one kind of extension point of the project (flows/hooks.py uses it too): one
implementation, registered from an AppConfig.ready(); a hook with a default does without.
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import ImproperlyConfigured

_MISSING = object()


class Hook:
    """One extension point, called with keyword arguments."""

    def __init__(self, name: str, doc: str, *, default=_MISSING):
        self.name = name
        self.__doc__ = doc
        self._default = default
        self._impl: Callable | None = None

    def register(self, impl: Callable) -> Callable:
        """Set the implementation (from an AppConfig.ready()); returns it unchanged."""
        self._impl = impl
        return impl

    def __call__(self, **kwargs):
        if self._impl is not None:
            return self._impl(**kwargs)
        if self._default is _MISSING:
            raise ImproperlyConfigured(f"no installed app implements the {self.name!r} hook")
        return self._default

    def __repr__(self) -> str:
        return f"<Hook {self.name}>"


# --------------------------------------------------------------------------- fair share

tenant_use = Hook(
    "tenant_use",
    "tenant_use(tenant_id): the tenant's limits, the platform's default and its current use "
    "(running nodes, active runs), as GET /api/v1/tenants/{id}/ shows them.",
    default=None,
)
limits_changed = Hook(
    "limits_changed",
    "limits_changed(): a tenant's limits or a data source's pool changed; nodes waiting for "
    "a slot are reconsidered after commit.",
    default=None,
)
