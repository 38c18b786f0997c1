"""Faults survived with real processes: the database (PostgreSQL) restarted mid-run.

Workers keep their connections between tasks, so after a restart every one of them holds a
dead connection; a node executing while the database is down must still record its result,
once, when it is back. The test process reconnects too.
"""

from __future__ import annotations

import os
import pwd
import shlex
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from operations.models import NodeRun
from operations.reconnect import reconnecting
from operations.services import run_start
from tests.factories import build_flow
from tests.integration.workers import ROOT, wait_for
from tests.operations.test_faults import start_blocked_diamond
from tests.operations.test_workers import TERMINAL, http, statuses

pytestmark = pytest.mark.integration

DB = settings.DATABASES["default"]
LOCAL_POSTGRES = DB["ENGINE"].endswith("postgresql") and DB.get("HOST", "") in (
    "",
    "127.0.0.1",
    "localhost",
    "::1",
)


@dataclass
class Cluster:
    """The local PostgreSQL server of DATABASE_URL, stopped and started as its owner."""

    data_dir: str
    options: list[str]  # the server's command-line options (postmaster.opts) but -D
    pg_ctl: str
    owner: str

    def pg_ctl_as_owner(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", self.owner, "--", self.pg_ctl, "-D", self.data_dir, *args],
            check=True,
            capture_output=True,
            timeout=90,
        )

    def stop(self) -> None:
        self.pg_ctl_as_owner("stop", "-m", "fast", "-w", "-t", "60")

    def start(self) -> None:
        log = f"/tmp/postgresql-{DB.get('PORT') or 5432}-restarted-by-tests.log"
        self.pg_ctl_as_owner("start", "-w", "-t", "60", "-l", log, "-o", shlex.join(self.options))

    def running(self) -> bool:
        return (Path(self.data_dir) / "postmaster.pid").exists()


def _cluster() -> Cluster | None:
    with connection.cursor() as cursor:
        cursor.execute("SHOW data_directory")
        data_dir = cursor.fetchone()[0]
    opts = Path(data_dir) / "postmaster.opts"
    if not opts.exists():
        return None
    binary, *args = shlex.split(opts.read_text())
    options = []
    while args:  # drop -D <dir>: pg_ctl passes its own
        arg = args.pop(0)
        if arg == "-D":
            args.pop(0)
        elif not arg.startswith("-D"):
            options.append(arg)
    pg_ctl = Path(binary).with_name("pg_ctl")
    if not pg_ctl.exists():
        return None
    return Cluster(data_dir, options, str(pg_ctl), pwd.getpwuid(os.stat(data_dir).st_uid).pw_name)


@pytest.fixture
def postgres(celery_workers, local_postgres):
    """The cluster of the test database, with the Celery workers running."""
    return local_postgres


@pytest.fixture
def local_postgres():
    """The cluster of the test database; started again after the test whatever happens."""
    try:
        cluster = _cluster()
    except Exception as exc:  # noqa: BLE001 - e.g. not allowed to read data_directory
        pytest.skip(f"cannot locate the PostgreSQL data directory: {exc}")
    if cluster is None:
        pytest.skip("the PostgreSQL of DATABASE_URL is not a local server this test can restart")
    yield cluster
    if not cluster.running():
        cluster.start()
    connection.close()


needs_local_postgres = pytest.mark.skipif(
    not LOCAL_POSTGRES or os.geteuid() != 0,
    reason="needs a local PostgreSQL as database and the right to restart it",
)


def fan_out(tenant, owner, server, key: str, width: int):
    """`first` -> `<key>0` .. `<key>{width-1}` (http, blocked on `key`) -> `join`."""
    busy = [f"{key}{i}" for i in range(width)]
    flow, _ = build_flow(
        tenant=tenant,
        owner=owner,
        nodes=["first", *(http(name, server.url(f"block/{key}")) for name in busy), "join"],
        edges=[*(("first", name) for name in busy), *((name, "join") for name in busy)],
    )
    return flow, ["first", *busy, "join"]


def finished(run, timeout: float = 60):
    """The run once terminal, polling through a connection that may have to reconnect."""

    def done():
        reconnecting(run.refresh_from_db)
        return run.status in TERMINAL

    wait_for(
        done,
        timeout=timeout,
        interval=0.2,
        what=lambda: f"run {run.pk} to finish; nodes: {statuses(run)}",
    )
    return run


def ran_once(run, names) -> None:
    """The run succeeded with one attempt of every node, each succeeded."""
    assert run.status == "succeeded", statuses(run)
    attempts = NodeRun.objects.filter(run=run).values_list("node_name", "status")
    assert sorted(attempts) == sorted((name, "succeeded") for name in names)


@needs_local_postgres
def test_database_restarted_while_a_node_runs_records_its_result_once(
    celery_workers, postgres, http_server, tenant, admin_user
):
    # Given: a node busy on a worker when the database stops
    run = start_blocked_diamond(http_server, "db", tenant=tenant, owner=admin_user)

    # When: the node finishes while the database is down, and the database comes back
    postgres.stop()
    http_server.release("db")
    wait_for(
        lambda: "database connection lost" in celery_workers.log_tail(200),
        timeout=30,
        what=lambda: f"the worker to wait for the database; log:\n{celery_workers.log_tail(40)}",
    )
    postgres.start()

    # Then: the result was recorded once and the run went on to succeed, with no watchdog
    ran_once(finished(run), ["first", "slow", "left", "right", "join"])
    assert http_server.hits["/block/db"] == 1


@needs_local_postgres
def test_database_restarted_between_nodes_workers_reconnect(
    celery_workers, postgres, http_server, tenant, admin_user
):
    # Given: every worker process holds a connection (each ran one node of a first run)
    width = celery_workers.concurrency
    flow, names = fan_out(tenant, admin_user, http_server, "warm", width)
    warm = run_start(flow=flow, mode="try", user=admin_user)
    wait_for(
        lambda: http_server.waiting("warm") == width, what="every worker process to run a node"
    )
    http_server.release("warm")
    ran_once(finished(warm), names)

    # When: the database restarts while no node runs, then a run starts
    postgres.stop()
    postgres.start()
    flow, names = reconnecting(fan_out, tenant, admin_user, http_server, "after", width)
    run = run_start(flow=flow, mode="try", user=admin_user)

    # Then: every worker process reconnected to claim and record its node
    wait_for(
        lambda: http_server.waiting("after") == width, what="every worker process to run a node"
    )
    http_server.release("after")
    ran_once(finished(run), names)
    assert http_server.hits["/block/after"] == width


SERVE = (
    "import sys; from wsgiref.simple_server import make_server; "
    "from config.wsgi import application; "
    "make_server('127.0.0.1', int(sys.argv[1]), application).serve_forever()"
)


@needs_local_postgres
@pytest.mark.django_db(transaction=True)
def test_the_web_tier_answers_after_a_database_restart(local_postgres, tmp_path):
    # Given the production entry point (config/wsgi.py) in a single-threaded server, which
    # keeps its database connection between requests as a gunicorn sync worker does
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.integration.worker_settings",
        "TRIBUTARY_TEST_DB_NAME": str(connection.settings_dict["NAME"]),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("DB_CONN_HEALTH_CHECKS", None)
    log = (tmp_path / "web.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def ask() -> int | None:
        """The status of a request that needs the database (an unknown token: 401)."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/me/", headers={"Authorization": "Token not-a-token"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return None  # not listening yet

    try:
        wait_for(lambda: ask() == 401, timeout=60, what="the web server to answer")
        assert ask() == 401
        # When the database restarts under it
        local_postgres.stop()
        local_postgres.start()
        # Then the next request is answered on a new connection: no 500
        assert [ask() for _ in range(3)] == [401, 401, 401], (tmp_path / "web.log").read_text()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)
        log.close()
