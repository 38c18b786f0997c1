"""Laptop settings: SQLite and the filesystem broker unless the environment says otherwise."""

import os

from .base import *  # noqa: F403
from .base import FIELD_ENCRYPTION_KEYS, env_bool

# `make run` exports DEBUG=0 unless told `DEBUG=1 make run`; manage.py alone stays in development.
DEBUG = env_bool("DEBUG", True)
# Static files come from whitenoise, DEBUG or not, straight from the app folders (no
# collectstatic on a laptop); production serves the collected STATIC_ROOT.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
# A development-only key; production refuses to start without SECRET_KEY.
SECRET_KEY = os.environ.get("SECRET_KEY") or "dev-only-insecure-key-do-not-use-in-production"
FIELD_ENCRYPTION_KEYS = FIELD_ENCRYPTION_KEYS or ["ZGV2LW9ubHktZmVybmV0LWtleS1ub3Qtc2VjcmV0ISE="]
