from django.apps import AppConfig


class BenchmarkConfig(AppConfig):
    """Installed so that `manage.py benchmark` and the no-op task of the raw Celery chain exist."""

    name = "config.benchmark"
    label = "benchmark"
