from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "operations"

    def ready(self) -> None:
        # scheduling creates runs and warms plans through these hooks (flows/hooks.py).
        from accounts import hooks as account_hooks
        from flows import hooks

        from . import plan, selectors
        from .services import creation, slots

        hooks.scheduled_runs_create.register(creation.runs_create_scheduled)
        hooks.plans_warm.register(plan.plans_warm)
        hooks.audit_sources.register(selectors.operation_audit_sources)
        # Fair share: the tenant API shows limits and use; a changed limit admits waiting nodes.
        account_hooks.tenant_use.register(slots.tenant_use)
        account_hooks.limits_changed.register(slots.limits_changed)
