from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "operations"

    def ready(self) -> None:
        # scheduling creates runs and warms plans through these hooks (flows/hooks.py).
        from flows import hooks

        from . import plan
        from .services import creation

        hooks.scheduled_runs_create.register(creation.runs_create_scheduled)
        hooks.plans_warm.register(plan.plans_warm)
