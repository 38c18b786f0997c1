"""WSGI entry point."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
# The web tier checks a kept database connection before a request uses it (Django's
# CONN_HEALTH_CHECKS), so after a database restart each process reconnects instead of
# answering one 500 per stale connection. Workers leave it off: operations.reconnect
# retries their work on a new connection, and the check would cost every node a round trip.
os.environ.setdefault("DB_CONN_HEALTH_CHECKS", "1")
application = get_wsgi_application()
