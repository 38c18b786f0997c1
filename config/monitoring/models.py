"""The running totals behind the cumulative series of /metrics."""

from django.db import models


class MetricsTotal(models.Model):
    """Running totals behind a cumulative series of /metrics (the platform's, no tenant).

    Counters and histograms must only grow and read the same from every web process, so
    they live here rather than in a process: each scrape adds what finished since
    `counted_until` under this row's lock (monitoring.totals).
    """

    name = models.CharField(max_length=64, primary_key=True)
    counted_until = models.DateTimeField(null=True, blank=True)
    # {"labels|joined": {"buckets": [cumulative counts], "sum": float, "count": int}}
    data = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.name} until {self.counted_until}"
