from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    """Prometheus metrics of the whole platform: the one app that reads both scheduling and
    operations (which may not import each other), so it sits above them."""

    name = "config.monitoring"
    label = "monitoring"
