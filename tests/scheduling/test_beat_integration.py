"""A real celery beat and worker fire an every-minute schedule exactly once per fire time."""

from datetime import timedelta

import pytest
from django.utils import timezone

from flows import services as flow_services
from operations.models import FlowRun
from scheduling import services
from scheduling.models import ScheduleFiring
from scheduling.tasks import fire_schedule

from .celery_procs import celery_processes, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def next_minute(moment):
    return moment.replace(second=0, microsecond=0) + timedelta(minutes=1)


def test_two_beats_and_a_worker_fire_each_minute_once_even_when_the_task_is_sent_twice(
    make_flow, member_user, tmp_path
):
    # Given a published flow scheduled every minute (and a second one due with it, so the
    # minute's runs start their nodes through the relay)
    flow = make_flow("every-minute")
    schedule = services.schedule_save(flow=flow, user=member_user, cron="* * * * *")
    other = make_flow("every-minute-too")
    services.schedule_save(flow=other, user=member_user, cron="* * * * *")
    for published in (flow, other):  # a schedule fires once its flow is published
        flow_services.flow_publish(flow=published, user=member_user)
        published.refresh_from_db()
    schedule.refresh_from_db()
    boundary = next_minute(schedule.active_since)

    # (two beat processes at once: a misconfiguration every fire time must survive)
    with celery_processes(tmp_path, beats=2) as procs:
        # When beat reaches the next minute boundary
        run = wait_for(
            lambda: FlowRun.objects.filter(flow=flow, fire_time=boundary).first(),
            deadline=75,
            what=f"the scheduled run of {boundary.isoformat()}",
        )
        # ... both beats sent that minute's task
        for name in ("beat", "beat2"):
            wait_for(
                lambda name=name: procs[name].has_logged(
                    rf"Sending due schedules \[[^\]]*\b{schedule.pk}\b"
                ),
                deadline=30,
                what=f"{name} to send the fire task",
            )
        # ... and the fire task is delivered twice more for the same minute
        extra = [fire_schedule.apply_async(kwargs={"schedule_id": schedule.pk}) for _ in range(2)]
        for result in extra:
            wait_for(
                lambda result=result: procs["worker"].has_logged(
                    rf"Task scheduling\.tasks\.fire_schedule\[{result.id}\] succeeded"
                ),
                deadline=30,
                what=f"the worker to process the extra fire task {result.id}",
            )
        processed_at = timezone.now()
        # ... and the nodes of both runs ran on the worker
        wait_for(
            lambda: (
                FlowRun.objects.filter(
                    flow__in=[flow, other], fire_time=boundary, status="succeeded"
                ).count()
                == 2
            ),
            deadline=30,
            what="both scheduled runs of the minute to succeed",
        )

    # Then there is one scheduled run per fire time, fired by beat, a moment late at most
    assert processed_at < boundary + timedelta(minutes=1), "extra tasks ran in a later minute"
    runs = list(FlowRun.objects.filter(flow=flow, mode="scheduled").order_by("fire_time"))
    fire_times = [r.fire_time for r in runs]
    assert len(fire_times) == len(set(fire_times)) >= 1
    assert FlowRun.objects.filter(flow=flow, fire_time=boundary).count() == 1
    assert run.business_time == boundary and run.version_id == flow.published_version_id
    firing = ScheduleFiring.objects.get(flow=flow, fire_time=boundary)
    assert firing.source == "beat" and firing.run_id == run.pk
    # Its lateness is stamped (how small it is, is the scheduling benchmark's target).
    assert firing.lateness is not None
    assert firing.lateness >= -services.EARLY_TOLERANCE.total_seconds()  # beat may be early
