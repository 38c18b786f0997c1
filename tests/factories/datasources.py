"""Data source factory, and scratch databases on the machine's PostgreSQL and MariaDB.

The server fixtures create a database of their own (never the platform's) and drop it at
the end of the session; they skip, saying why, only when the server is unreachable.
Import them into a test module to use them (`from tests.factories.datasources import ...`).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import factory
import pytest
from django.conf import settings

from flows.models import DataSource

from .accounts import TenantFactory

PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/")
MYSQL_URL = os.environ.get("TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/")


class DataSourceFactory(factory.django.DjangoModelFactory):
    """A SQLite data source in its tenant's folder by default (or pass database=<absolute path>)."""

    class Meta:
        model = DataSource

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"source {n}")
    engine = "sqlite"
    # A file in the tenant's own SQLite folder (SQLITE_DATASOURCE_DIRS/<slug>/).
    database = factory.LazyAttribute(
        lambda o: os.path.join(
            settings.SQLITE_DATASOURCE_DIRS[0],
            o.tenant.slug,
            f"tributary-test-{uuid.uuid4().hex}.sqlite3",
        )
    )
    options = factory.LazyFunction(lambda: {"create": True})


@dataclass(frozen=True)
class Server:
    """Where a scratch database lives, and how to reach it as the server's admin."""

    engine: str
    host: str
    port: int
    username: str
    password: str
    database: str

    def datasource(self, tenant, name: str | None = None, **fields) -> DataSource:
        values = {
            "tenant": tenant,
            "name": name or f"{self.engine}-{uuid.uuid4().hex[:6]}",
            "engine": self.engine,
            "host": self.host,
            "port": self.port,
            "database": self.database,
            "username": self.username,
            "options": {},
        }
        values.update(fields)
        password = values.pop("password", self.password)
        ds = DataSource(**values)
        ds.password = password
        ds.save()
        return ds

    def connect(self):
        """A direct driver connection (autocommit) for arranging and checking data."""
        if self.engine == "postgresql":
            import psycopg

            return psycopg.connect(
                host=self.host,
                port=self.port,
                user=self.username,
                password=self.password,
                dbname=self.database,
                autocommit=True,
            )
        import pymysql

        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.username,
            password=self.password,
            database=self.database,
            autocommit=True,
        )


def _scratch_name() -> str:
    # Per process: several people (and xdist workers) run the suite on the same servers at once.
    return f"tributary_scratch_{os.getpid()}_{uuid.uuid4().hex[:6]}"


def _parts(url: str):
    parts = urlsplit(url)
    return (
        parts.hostname or "127.0.0.1",
        parts.port,
        unquote(parts.username or ""),
        unquote(parts.password or ""),
    )


@pytest.fixture(scope="session")
def pg_server():
    """A scratch database on the machine's PostgreSQL (TEST_POSTGRES_URL)."""
    import psycopg

    host, port, user, password = _parts(PG_URL)
    port = port or 5432
    name = _scratch_name()
    try:
        admin = psycopg.connect(
            host=host,
            port=port,
            user=user or "postgres",
            password=password,
            dbname="postgres",
            autocommit=True,
            connect_timeout=3,
        )
    except psycopg.OperationalError as exc:
        pytest.skip(
            f"PostgreSQL is not reachable at {host}:{port} ({exc}); start it to run this test"
        )
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    yield Server("postgresql", host, port, user or "postgres", password, name)
    with psycopg.connect(
        host=host,
        port=port,
        user=user or "postgres",
        password=password,
        dbname="postgres",
        autocommit=True,
    ) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def mysql_server():
    """A scratch database on the machine's MariaDB / MySQL (TEST_MYSQL_URL)."""
    import pymysql

    host, port, user, password = _parts(MYSQL_URL)
    port = port or 3306
    name = _scratch_name()
    try:
        admin = pymysql.connect(
            host=host, port=port, user=user or "root", password=password, connect_timeout=3
        )
    except pymysql.MySQLError as exc:
        pytest.skip(
            f"MariaDB/MySQL is not reachable at {host}:{port} ({exc}); start it to run this test"
        )
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    admin.close()
    yield Server("mysql", host, port, user or "root", password, name)
    admin = pymysql.connect(host=host, port=port, user=user or "root", password=password)
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    admin.close()


class Recorder:
    """An ExecutionContext for calling executors directly, recording logs and cancel hooks."""

    def __init__(
        self,
        *,
        tenant_id: int,
        config: dict,
        timeout: float = 30,
        state: dict | None = None,
        business_time=None,
        flow_id: int = 1,
        run_id: int = 987_654_321,
    ):
        from django.utils import timezone

        from flows.nodes.base import ExecutionContext

        self.lines: list[str] = []
        self.cancel_hooks: list = []
        self.stop = False
        self.ctx = ExecutionContext(
            tenant_id=tenant_id,
            flow_id=flow_id,
            run_id=run_id,
            node_run_id=1,
            node_id=1,
            node_name="node",
            config=config,
            timeout=timeout,
            business_time=business_time or timezone.now(),
            state=dict(state or {}),
            log=self.lines.append,
            cancelled=lambda: self.stop,
            on_cancel=self.cancel_hooks.append,
        )

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def cancel(self) -> None:
        """What the engine does on stop: set the flag and call every registered hook."""
        self.stop = True
        for hook in list(self.cancel_hooks):
            hook()
