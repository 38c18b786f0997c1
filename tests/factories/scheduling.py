import datetime

import factory

from scheduling.models import Schedule


class ScheduleFactory(factory.django.DjangoModelFactory):
    """A saved schedule written straight to the table (no beat sync): pass `flow=`."""

    class Meta:
        model = Schedule

    flow = None
    tenant = factory.LazyAttribute(lambda s: s.flow.tenant)
    enabled = True
    kind = "cron"
    cron = "0 0 * * *"
    start_date = datetime.date(2020, 1, 1)
    end_date = None
    timezone = "UTC"
