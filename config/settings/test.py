"""Test settings: the same database and broker as the environment says, fast hashing."""

import os

from .base import *  # noqa: F403
from .base import FIELD_ENCRYPTION_KEYS, OUTBOUND_ALLOW

DEBUG = False
SECRET_KEY = os.environ.get("SECRET_KEY") or "test-only-key"
FIELD_ENCRYPTION_KEYS = FIELD_ENCRYPTION_KEYS or ["dGVzdC1vbmx5LWZlcm5ldC1rZXktMzItYnl0ZXMhISE="]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"token": "1000/min"}}  # noqa: F405
# Tests reach the machine's PostgreSQL/MariaDB data sources and a local HTTP server; the
# platform's own database (same host:port and database name) and broker stay refused.
OUTBOUND_ALLOW = [*OUTBOUND_ALLOW, "127.0.0.0/8", "::1"]
# Test data sources are SQLite files in pytest's temporary folders.
import tempfile  # noqa: E402

SQLITE_DATASOURCE_DIRS = [*SQLITE_DATASOURCE_DIRS, tempfile.gettempdir()]  # noqa: F405
