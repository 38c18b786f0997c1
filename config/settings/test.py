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
# Test data sources are SQLite files in a folder of this test session (tenant folders are
# made inside it). The worker processes a test starts inherit the variable, so they allow
# the same folder; concurrent sessions on one machine never share tenant folders.
if not os.environ.get("TRIBUTARY_TEST_SQLITE_DIR"):
    import atexit
    import shutil
    import tempfile

    os.environ["TRIBUTARY_TEST_SQLITE_DIR"] = tempfile.mkdtemp(prefix="tributary-sqlite-")
    atexit.register(shutil.rmtree, os.environ["TRIBUTARY_TEST_SQLITE_DIR"], ignore_errors=True)
SQLITE_DATASOURCE_DIRS = [os.environ["TRIBUTARY_TEST_SQLITE_DIR"]]
