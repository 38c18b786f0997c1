"""Test settings: the same database and broker as the environment says, fast hashing."""

import os
from urllib.parse import urlsplit

from .base import *  # noqa: F403
from .base import FIELD_ENCRYPTION_KEYS, OUTBOUND_ALLOW

DEBUG = False
SECRET_KEY = os.environ.get("SECRET_KEY") or "test-only-key"
FIELD_ENCRYPTION_KEYS = FIELD_ENCRYPTION_KEYS or ["dGVzdC1vbmx5LWZlcm5ldC1rZXktMzItYnl0ZXMhISE="]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"token": "1000/min"}}  # noqa: F405
# Tests reach the machine's PostgreSQL/MariaDB data sources and a local HTTP server.
OUTBOUND_ALLOW = [*OUTBOUND_ALLOW, "127.0.0.0/8", "::1"]


def _server(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname or '127.0.0.1'}:{parts.port or (3306 if parts.scheme == 'mysql' else 5432)}"


# The suite's scratch databases live on the machine's PostgreSQL and MariaDB, and the
# platform's own database may be on the same PostgreSQL server: opt exactly those two
# servers in. The platform's own database, the broker and the cache stay refused.
OUTBOUND_ALLOW_PLATFORM_SERVERS = [
    _server(os.environ.get("TEST_POSTGRES_URL") or "postgres://127.0.0.1:5432/"),
    _server(os.environ.get("TEST_MYSQL_URL") or "mysql://127.0.0.1:3306/"),
]
# Test data sources are SQLite files in pytest's temporary folders.
import tempfile  # noqa: E402

SQLITE_DATASOURCE_DIRS = [*SQLITE_DATASOURCE_DIRS, tempfile.gettempdir()]  # noqa: F405
