"""Test settings: the same database and broker as the environment says, fast hashing."""

import os

from .base import *  # noqa: F403
from .base import FIELD_ENCRYPTION_KEYS

DEBUG = False
SECRET_KEY = os.environ.get("SECRET_KEY") or "test-only-key"
FIELD_ENCRYPTION_KEYS = FIELD_ENCRYPTION_KEYS or ["dGVzdC1vbmx5LWZlcm5ldC1rZXktMzItYnl0ZXMhISE="]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"token": "1000/min"}}  # noqa: F405
