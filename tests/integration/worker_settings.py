"""Settings of the Celery workers the integration tests start: the test database, quick timings."""

import os

from config.settings.test import *  # noqa: F403
from config.settings.test import CELERY_BROKER_TRANSPORT_OPTIONS, DATABASES

# The database pytest-django created for this session (not the development one).
DATABASES["default"]["NAME"] = os.environ["TRIBUTARY_TEST_DB_NAME"]
# Poll the filesystem broker often (the Redis transport ignores it).
CELERY_BROKER_TRANSPORT_OPTIONS = {**CELERY_BROKER_TRANSPORT_OPTIONS, "polling_interval": 0.05}
TRIBUTARY_HEARTBEAT_SECONDS = 1.0
TRIBUTARY_CANCEL_POLL_SECONDS = 0.2
# Fair share: tests empty the tables between them, so the workers report their slots often.
TRIBUTARY_WORKER_REPORT_SECONDS = 0.5
# The workers' e-mail goes to files the test reads (the SMTP server is outside the product).
EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = os.environ.get("TRIBUTARY_TEST_MAIL_DIR", "/tmp/tributary-test-mail")
