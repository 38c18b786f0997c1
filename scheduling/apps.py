from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "scheduling"

    def ready(self) -> None:
        # flows and operations reach schedules through these hooks (flows/hooks.py).
        from flows import hooks

        from . import selectors, services
        from .models import Schedule

        hooks.schedule_sync.register(services.schedule_sync)
        hooks.schedule_delete_for_flow.register(services.schedule_delete_for_flow)
        hooks.schedule_import.register(services.schedule_import)
        hooks.schedule_history_model.register(lambda: Schedule.history.model)
        hooks.schedule_summary.register(selectors.schedule_summary)
        hooks.schedule_zones.register(selectors.schedule_zones)
        hooks.fire_times_in_range.register(selectors.fire_times_in_range)
        hooks.fire_times_window.register(selectors.fire_times_window)
