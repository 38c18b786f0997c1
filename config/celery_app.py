"""The Celery application; tasks are discovered in every installed app's tasks.py."""

import os
import uuid
from time import monotonic

from celery import Celery
from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.transport import redis as redis_transport
from kombu.utils.json import dumps

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")


def _put_atomically(self, queue, payload, **kwargs):
    """kombu's filesystem transport writes a message file in place, so a worker polling the
    folder can take it half-written and die on the JSON; write it aside, then rename it."""
    name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
    final = os.path.join(self.data_folder_out, name)
    partial = f"{final}.partial"  # not a "<queue>.msg" name: consumers skip it
    try:
        with open(partial, "wb") as f:
            f.write(dumps(payload).encode())
        os.replace(partial, final)
    except OSError as exc:
        raise ChannelError(f"Cannot add file {final!r} to directory") from exc


filesystem.Channel._put = _put_atomically

_redis_connparams = redis_transport.Channel._connparams


def _connparams_of_live_transport(self, asynchronous=False):
    """A Redis channel of a connection that was already torn down has lost its broker.

    Celery 5.7's worker, on losing the broker, collects its connection (which detaches the
    transport: `transport.client = None`) and then closes it once more. The channel's first
    close, cut short by the dead socket (the pending BRPOP read raises), is retried then,
    and restoring the unacknowledged message of a running (acks_late) task builds a pool
    from `transport.client`: AttributeError "'NoneType' object has no attribute 'hostname'",
    which is no connection error, so the worker logs "Unrecoverable error" and exits instead
    of reconnecting (the late ack of that task fails the same way). Say it is a connection
    error: Celery then reconnects, and the watchdog re-sends what Redis lost.
    """
    if self.connection.client is None:
        raise redis_transport.redis.exceptions.ConnectionError("the broker connection was closed")
    return _redis_connparams(self, asynchronous=asynchronous)


if redis_transport.redis is not None:
    redis_transport.Channel._connparams = _connparams_of_live_transport

app = Celery("tributary")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
