"""Entry point of the celery processes the integration tests start: `python _celery_main.py worker ...`.

It points Django at the test database (TRIBUTARY_TEST_DB) before anything connects, so a
real worker or beat sees exactly what the transactional test committed.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

from django.conf import settings  # noqa: E402

if os.environ.get("TRIBUTARY_TEST_DB"):
    settings.DATABASES["default"]["NAME"] = os.environ["TRIBUTARY_TEST_DB"]

import django  # noqa: E402

django.setup()

from config.celery_app import app  # noqa: E402

if __name__ == "__main__":
    app.start(sys.argv[1:])
