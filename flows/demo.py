"""The demo tenant's sample flow: a SQLite warehouse loaded for ${bizdate}, checked, synced."""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings
from django.db import transaction

from accounts.choices import Role
from accounts.selectors import TenantContext

from .datasources import netpolicy
from .datasources import services as datasources
from .models import DataSource, TaskFlow
from .services import flow_create, flow_publish, flow_stakeholders_set, graph_replace

FLOW_NAME = "Daily sales demo"

NODES = [
    {
        "key": "create",
        "name": "create_orders",
        "type": "sql",
        "position": {"x": 0, "y": 0},
        "config": {
            "datasource": "$warehouse",
            "sql": (
                "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                "bizdate TEXT NOT NULL, amount REAL NOT NULL)"
            ),
        },
    },
    {
        "key": "load",
        "name": "load_orders",
        "type": "sql",
        "position": {"x": 220, "y": 0},
        "config": {
            "datasource": "$warehouse",
            "sql": (
                "DELETE FROM orders WHERE bizdate = '${bizdate}';\n"
                "INSERT INTO orders (bizdate, amount) VALUES "
                "('${bizdate}', 120.5), ('${bizdate}', 80.0), ('${bizdate}', 42.25)"
            ),
        },
    },
    {
        "key": "count",
        "name": "count_orders",
        "type": "sql_assign",
        "position": {"x": 440, "y": 0},
        "config": {
            "datasource": "$warehouse",
            "sql": (
                "SELECT COUNT(*) AS order_count, SUM(amount) AS revenue "
                "FROM orders WHERE bizdate = '${bizdate}'"
            ),
        },
    },
    {
        "key": "check",
        "name": "has_orders",
        "type": "condition",
        "position": {"x": 660, "y": 0},
        "config": {"mode": "expression", "expression": "${order_count} > 0"},
    },
    {
        "key": "mart",
        "name": "prepare_mart",
        "type": "sql",
        "position": {"x": 660, "y": 160},
        "config": {
            "datasource": "$mart",
            "sql": (
                "CREATE TABLE IF NOT EXISTS daily_orders (bizdate TEXT NOT NULL, amount REAL NOT NULL);\n"
                "DELETE FROM daily_orders WHERE bizdate = '${bizdate}'"
            ),
        },
    },
    {
        "key": "sync",
        "name": "sync_to_mart",
        "type": "data_sync",
        "position": {"x": 880, "y": 0},
        "config": {
            "source": "$warehouse",
            "target": "$mart",
            "table": "daily_orders",
            "mode": "append",
            "query": "SELECT bizdate, amount FROM orders WHERE bizdate = '${bizdate}'",
        },
    },
    {
        "key": "empty",
        "name": "no_orders",
        "type": "noop",
        "position": {"x": 880, "y": 160},
        "config": {},
    },
]
EDGES = [
    {"upstream": "create", "downstream": "load"},
    {"upstream": "load", "downstream": "count"},
    {"upstream": "count", "downstream": "check"},
    {"upstream": "check", "downstream": "sync", "branch": "true"},
    {"upstream": "check", "downstream": "empty", "branch": "false"},
    {"upstream": "mart", "downstream": "sync"},
]


def _datasource(ctx: TenantContext, name: str, filename: str) -> DataSource:
    """The demo's SQLite data source, in the tenant's own folder (moved there if older)."""
    path = netpolicy.tenant_sqlite_dirs(ctx.tenant.slug, create=True)[0] / filename
    existing = DataSource.objects.filter(tenant=ctx.tenant, name=name).first()
    if existing is None:
        return datasources.data_source_create(
            ctx=ctx, name=name, engine="sqlite", database=str(path), options={"create": True}
        )
    if existing.engine == "sqlite" and _in_an_allowed_dir(existing.database, filename):
        # Loaded before every tenant had its own folder: move the files in, then repoint.
        old = Path(existing.database)
        for suffix in ("", "-wal", "-shm", "-journal"):
            src, dst = Path(f"{old}{suffix}"), Path(f"{path}{suffix}")
            if src.exists() and not dst.exists():
                shutil.move(src, dst)
        return datasources.data_source_update(ctx=ctx, datasource=existing, database=str(path))
    return existing


def _in_an_allowed_dir(database: str, filename: str) -> bool:
    """`database` is the demo's file directly in one of SQLITE_DATASOURCE_DIRS (the old layout)."""
    return any(Path(database) == Path(root) / filename for root in settings.SQLITE_DATASOURCE_DIRS)


def _bind(config: dict, ids: dict[str, int]) -> dict:
    return {
        k: ids[v[1:]] if isinstance(v, str) and v[1:] in ids and v.startswith("$") else v
        for k, v in config.items()
    }


def load(*, tenant, users, stdout) -> None:
    """Create the demo data sources and the published sample flow, once."""
    admin = users[Role.ADMIN]
    ctx = TenantContext(tenant=tenant, user=admin, role=Role.ADMIN)
    with transaction.atomic():
        ids = {
            "warehouse": _datasource(ctx, "demo-warehouse", "demo_warehouse.sqlite3").pk,
            "mart": _datasource(ctx, "demo-mart", "demo_mart.sqlite3").pk,
        }
        if TaskFlow.objects.filter(tenant=tenant, name=FLOW_NAME).exists():
            stdout.write(f"Sample flow '{FLOW_NAME}' already there.")
            return
        flow = flow_create(
            tenant=tenant,
            user=admin,
            name=FLOW_NAME,
            business_scenario="Demo",
            description="Loads the day's orders into a SQLite warehouse, counts them and, "
            "when there are any, copies them to a mart. Try Run it!",
        )
        nodes = [{**n, "config": _bind(n["config"], ids)} for n in NODES]
        flow, _ = graph_replace(flow=flow, user=admin, nodes=nodes, edges=EDGES)
        flow_stakeholders_set(flow=flow, user=admin, users=[users[Role.MEMBER].pk])
        flow_publish(flow=flow, user=admin, comment="Demo flow")
    stdout.write(f"Sample flow '{FLOW_NAME}' created and published (owner {admin.username}).")
