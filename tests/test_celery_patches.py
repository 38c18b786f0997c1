"""The Celery/kombu patches: applied, checked against the installed versions, doing their job."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from kombu.transport import filesystem
from kombu.transport import redis as redis_transport

from config import celery_patches


def test_every_patch_is_applied_and_was_checked_against_the_installed_version():
    for patch in celery_patches.PATCHES:
        owner, name = patch.target()
        assert getattr(owner, name) is patch.replacement, f"{owner.__name__}.{name}"
        # Upgrading Celery or kombu fails here until someone re-checks the patch and
        # widens its range (or removes it).
        assert patch.checked(), (patch.package, patch.low, patch.high)


def test_a_patch_whose_target_is_gone_fails_loudly():
    gone = celery_patches.Patch(
        package="kombu",
        low="0",
        high="999",
        why="an example",
        target=lambda: (SimpleNamespace, "no_such_attribute"),
        replacement=lambda: None,
    )
    with pytest.raises(RuntimeError, match="no_such_attribute"):
        gone.apply()


def test_filesystem_messages_appear_whole_under_their_final_name(tmp_path):
    channel = SimpleNamespace(data_folder_out=str(tmp_path))
    filesystem.Channel._put(channel, "celery", {"body": "x" * 10_000})

    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].name.endswith(".celery.msg")
    assert json.loads(files[0].read_text()) == {"body": "x" * 10_000}


def test_a_detached_redis_channel_reports_a_connection_error():
    channel = SimpleNamespace(connection=SimpleNamespace(client=None))
    with pytest.raises(redis_transport.redis.exceptions.ConnectionError):
        redis_transport.Channel._connparams(channel)
