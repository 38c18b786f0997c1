"""A worker prepares every node type before its pool starts, so forked processes begin warm."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A fresh interpreter, as a worker's main process is: the test process has long loaded
# everything. It loads the worker's modules, then sends the signal Celery sends before
# starting the pool, and says what is ready afterwards.
PROGRAM = """
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
import django
django.setup()
from config.celery_app import app
app.loader.init_worker()
from flows import nodes
before = [nodes._loaded, "httpx" in sys.modules]
from celery.signals import worker_init
worker_init.send(sender=None)
from flows.datasources import pinned_http
after = [nodes._loaded, "httpx" in sys.modules, bool(pinned_http._tls)]
print(json.dumps([before, after]))
"""


def test_the_node_types_are_prepared_before_the_pool_starts():
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    before, after = json.loads(done.stdout.strip().splitlines()[-1])
    # Neither the types nor httpx were loaded by the worker's modules themselves...
    assert before == [False, False]
    # ...and after the signal: every type registered, httpx loaded, the http node's TLS
    # context built.
    assert after == [True, True, True]
