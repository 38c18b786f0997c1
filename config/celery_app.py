"""The Celery application; tasks are discovered in every installed app's tasks.py."""

import os

from celery import Celery

from config import celery_patches

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

# Celery and kombu as Tributary needs them: each patch says why (config/celery_patches.py).
celery_patches.apply()

app = Celery("tributary")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
