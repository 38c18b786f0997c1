"""Every patch Tributary makes to Celery and kombu, each with why it exists and where it was checked.

`apply()` runs once, from config/celery_app.py, before the app is created. Each patch
names the package versions it was written and tested against: on a version outside that
range it is still applied (each is harmless where the bug is fixed) but a warning asks
to re-check it, and a patch whose target has gone away fails loudly at start-up instead
of silently doing nothing. tests/test_celery_patches.py holds each to that.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from time import monotonic

logger = logging.getLogger("tributary.celery")


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for part in text.split("."):
        digits = "".join(c for c in part if c.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


@dataclass(frozen=True)
class Patch:
    """One replaced attribute of a library class."""

    package: str
    # The versions it was checked against: [low, high).
    low: str
    high: str
    why: str
    target: Callable[[], tuple[object, str]]  # -> (owner, attribute name)
    replacement: Callable

    def checked(self) -> bool:
        """Whether the installed package is one of the versions this patch was checked against."""
        installed = _version_tuple(version(self.package))
        return _version_tuple(self.low) <= installed < _version_tuple(self.high)

    def apply(self) -> None:
        owner, name = self.target()
        original = getattr(owner, name, None)
        if original is None:
            raise RuntimeError(
                f"{self.package} {version(self.package)} has no {owner.__name__}.{name}: "
                f"the patch for '{self.why.splitlines()[0]}' needs a new look"
            )
        if not self.checked():
            logger.warning(
                "%s %s is outside the versions %s..%s that the patch of %s.%s was checked "
                "against; it is applied, but re-check whether it is still needed",
                self.package,
                version(self.package),
                self.low,
                self.high,
                owner.__name__,
                name,
            )
        if getattr(original, "__tributary_patch__", False):
            return  # applied already (the module was imported twice)
        self.replacement.__tributary_patch__ = True
        self.replacement.__wrapped__ = original
        setattr(owner, name, self.replacement)


# --------------------------------------------------------------------------- filesystem


def _filesystem_channel():
    from kombu.transport import filesystem

    return filesystem.Channel, "_put"


def _put_atomically(self, queue, payload, **kwargs):
    """Write the message file aside, then rename it into the queue's folder."""
    from kombu.exceptions import ChannelError
    from kombu.utils.json import dumps

    name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
    final = os.path.join(self.data_folder_out, name)
    partial = f"{final}.partial"  # not a "<queue>.msg" name: consumers skip it
    try:
        with open(partial, "wb") as f:
            f.write(dumps(payload).encode())
        os.replace(partial, final)
    except OSError as exc:
        raise ChannelError(f"Cannot add file {final!r} to directory") from exc


# --------------------------------------------------------------------------- redis


def _redis_channel():
    from kombu.transport import redis

    return redis.Channel, "_connparams"


def _connparams_of_live_transport(self, asynchronous=False):
    """Raise a connection error instead of an AttributeError once the transport is detached."""
    from kombu.transport import redis

    if self.connection.client is None:
        raise redis.redis.exceptions.ConnectionError("the broker connection was closed")
    return _connparams_of_live_transport.__wrapped__(self, asynchronous=asynchronous)


PATCHES = (
    Patch(
        package="kombu",
        low="5.7",
        high="5.8",
        why=(
            "kombu's filesystem transport writes a message file in place, so a worker polling\n"
            "the folder can take it half-written and die on the JSON: write it aside, then\n"
            "rename it (a rename is atomic)."
        ),
        target=_filesystem_channel,
        replacement=_put_atomically,
    ),
    Patch(
        package="kombu",
        low="5.7",
        high="5.8",
        why=(
            "A Redis channel of a connection that was already torn down has lost its broker.\n"
            "Celery 5.7's worker, on losing the broker, collects its connection (which detaches\n"
            "the transport: transport.client = None) and then closes it once more. The\n"
            "channel's first close, cut short by the dead socket, is retried then, and\n"
            "restoring the unacknowledged message of a running (acks_late) task builds a\n"
            "pool from transport.client: AttributeError \"'NoneType' object has no attribute\n"
            "'hostname'\", which is no connection error, so the worker logs 'Unrecoverable\n"
            "error' and exits instead of reconnecting (the late ack of that task fails the\n"
            "same way). Saying it is a connection error makes Celery reconnect, and the\n"
            "watchdog re-sends what Redis lost."
        ),
        target=_redis_channel,
        replacement=_connparams_of_live_transport,
    ),
)


def apply() -> None:
    """Apply every patch (idempotent); the Redis one only where the redis client is installed."""
    from kombu.transport import redis

    for patch in PATCHES:
        if patch.target is _redis_channel and redis.redis is None:
            continue
        patch.apply()
