"""Laptop settings: SQLite and the filesystem broker unless the environment says otherwise."""

import os

from .base import *  # noqa: F403
from .base import FIELD_ENCRYPTION_KEYS, env_bool

DEBUG = env_bool("DEBUG", True)
# A development-only key; production refuses to start without SECRET_KEY.
SECRET_KEY = os.environ.get("SECRET_KEY") or "dev-only-insecure-key-do-not-use-in-production"
FIELD_ENCRYPTION_KEYS = FIELD_ENCRYPTION_KEYS or ["ZGV2LW9ubHktZmVybmV0LWtleS1ub3Qtc2VjcmV0ISE="]
