"""Publishing a flow as if at a given moment (a schedule's edits fire once published)."""

from flows import services as flow_services
from scheduling import services
from scheduling.models import Schedule


def publish_at(flow, user, now=None):
    """Publish `flow` (its schedule with it); with `now`, its schedule became active then."""
    flow_services.flow_publish(flow=flow, user=user)
    flow.refresh_from_db()
    schedule = Schedule.objects.filter(flow=flow).first()
    if schedule is not None and now is not None and schedule.active_since is not None:
        services._set_active_since(schedule, now)
    return schedule
