"""Every SQLite database gets the same options, and a locked one is tried again, not failed."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection, transaction

from config.settings import base
from operations import reconnect


def test_a_database_url_naming_a_sqlite_file_gets_the_default_files_options(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'tributary.sqlite3'}")
    db = base.database_from_env()
    assert db["ENGINE"] == "django.db.backends.sqlite3"
    assert db["OPTIONS"] == base.SQLITE_OPTIONS
    assert "journal_mode=WAL" in db["OPTIONS"]["init_command"]
    assert db["OPTIONS"]["transaction_mode"] == "IMMEDIATE" and db["OPTIONS"]["timeout"] > 0

    monkeypatch.delenv("DATABASE_URL")
    assert base.database_from_env()["OPTIONS"] == base.SQLITE_OPTIONS  # the default file


def test_a_postgresql_url_gets_no_sqlite_options(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u@127.0.0.1:5432/tributary")
    assert "OPTIONS" not in base.database_from_env() or not base.database_from_env()["OPTIONS"]


class Flaky:
    """A unit of work that fails with `error` the first `times` calls."""

    def __init__(self, error: str, times: int):
        self.error, self.times, self.calls = error, times, 0
        self.__name__ = "flaky"

    def __call__(self):
        self.calls += 1
        if self.calls <= self.times:
            raise OperationalError(self.error)
        return "done"


@pytest.fixture
def quick_retries(monkeypatch):
    monkeypatch.setattr(reconnect, "FIRST_DELAY", 0.01)


@pytest.mark.django_db(transaction=True)
def test_a_unit_of_work_that_meets_a_locked_database_is_tried_again(quick_retries):
    # As a node task calls it: outside any transaction (the unit is one transaction).
    work = Flaky("database is locked", times=2)
    assert reconnect.reconnecting(work) == "done"
    assert work.calls == 3


@pytest.mark.django_db(transaction=True)
def test_inside_a_callers_transaction_the_retry_is_the_callers(quick_retries):
    work = Flaky("database is locked", times=1)
    with pytest.raises(OperationalError), transaction.atomic():
        reconnect.reconnecting(work)
    assert work.calls == 1


@pytest.mark.django_db(transaction=True)
def test_other_errors_on_a_live_connection_are_not_retried(quick_retries):
    connection.ensure_connection()
    work = Flaky("deadlock detected", times=1)
    with pytest.raises(OperationalError):
        reconnect.reconnecting(work)
    assert work.calls == 1
