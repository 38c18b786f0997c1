"""The Celery application; tasks are discovered in every installed app's tasks.py."""

import os
import uuid
from time import monotonic

from celery import Celery
from kombu.exceptions import ChannelError
from kombu.transport import filesystem
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

app = Celery("tributary")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
