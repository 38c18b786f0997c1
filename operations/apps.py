from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "operations"

    def ready(self) -> None:
        # scheduling creates runs and warms plans through these hooks (flows/hooks.py).
        from flows import hooks

        from . import plan, selectors
        from .services import creation

        hooks.scheduled_runs_create.register(creation.runs_create_scheduled)
        hooks.plans_warm.register(plan.plans_warm)
        hooks.audit_sources.register(selectors.operation_audit_sources)
