"""Rich tenant fixtures for the hardening tests, built through the services, plus a fingerprint.

Tenant A ("the victim") holds one of everything a route can name by id: flows, nodes, edges,
a published version, a data source, a secret, memberships, a schedule, runs and node runs, all with
names carrying the marker `zqxa` so a leak in any response body is easy to spot. Tenant B
("the prober") has an admin (staff, for the Django admin walk) and a plain member.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass, field

from django.apps import apps
from django.db.models import Q

from accounts import services as account_services
from accounts.choices import Role
from accounts.models import Membership, Tenant, User
from accounts.selectors import TenantContext
from flows import services
from flows.models import DataSource
from tests.factories import MembershipFactory, TenantFactory, UserFactory

MARKER = "zqxa"
PROJECT_APPS = ("accounts", "flows", "operations", "scheduling", "monitoring")
# Tables outside the project apps that still hold tenant data.
EXTRA_MODELS = ("django_celery_beat.PeriodicTask",)
MISSING = 2_000_000_000  # an id that exists nowhere (fits a 32-bit integer)


@dataclass
class Victim:
    """Tenant A: every id a route can take, and every identifying string it owns."""

    tenant: Tenant
    users: dict[str, User]
    ids: dict[str, int]
    secrets: list[str] = field(default_factory=list)


@dataclass
class Prober:
    """Tenant B: its admin (staff), member and auditor, their API tokens and a flow of their own."""

    tenant: Tenant
    admin: User
    member: User
    auditor: User
    tokens: dict[str, str]
    ids: dict[str, int]


# Tenant-admin endpoints are called as the tenant's admin, the rest as the flows' owner.
ADMIN_PREFIXES = (
    "/api/v1/members/",
    "/api/v1/datasources/",
    "/api/v1/secrets/",
    "/api/v1/audit/",
    "/api/v1/service-accounts/",
    "/api/v1/webhooks/",
)


def who_calls(path: str) -> str:
    """Which of the victim's users ("admin" or "owner") reaches past `path`'s access check."""
    return "admin" if path.startswith(ADMIN_PREFIXES) else "owner"


def _ds(tenant, name, host) -> DataSource:
    ds = DataSource(
        tenant=tenant, name=name, engine="sqlite", database=f"/tmp/{name}.sqlite3", host=host
    )
    ds.password = f"{MARKER}-password"
    ds.save()
    return ds


def _secret(tenant, user, name, flow):
    from flows.secrets.services import secret_create

    ctx = TenantContext(tenant=tenant, user=user, role=Role.ADMIN)
    return secret_create(ctx=ctx, name=name, value=f"{MARKER}-secret-value", flow=flow)


def _runs(flow, user) -> tuple[int, int]:
    """A dry run of the flow and one of its node runs, with a log line naming the marker."""
    from operations.models import NodeRun, OperationRecord
    from operations.services import run_start

    run = run_start(flow=flow, mode="dry", user=user)
    node_run = NodeRun.objects.filter(run=run).order_by("id").first()
    NodeRun.objects.filter(pk=node_run.pk).update(log=f"{MARKER} log line", error=f"{MARKER} err")
    OperationRecord.objects.create(
        tenant=flow.tenant,
        user=user,
        action="rerun",
        run=run,
        flow=flow,
        flow_name=flow.name,
        reason=f"{MARKER} reason",
    )
    return run.pk, node_run.pk


def _webhook(tenant, user, url: str) -> tuple[int, int]:
    """A webhook subscription of the tenant and one delivery of it."""
    from flows.models import WebhookDelivery
    from flows.webhooks.services import webhook_create

    subscription, _ = webhook_create(
        tenant=tenant,
        user=user,
        url=url,
        events=["flow.published"],
        secret=f"{MARKER}-whsecret-value",
    )
    delivery = WebhookDelivery.objects.create(
        tenant=tenant,
        subscription=subscription,
        event_id="00000000-0000-0000-0000-000000000001",
        event_type="flow.published",
        stream="flow:0",
        body='{"id": "00000000-0000-0000-0000-000000000001"}',
    )
    return subscription.pk, delivery.pk


def _schedule(flow, user) -> int:
    from scheduling.services import schedule_save

    return schedule_save(
        flow=flow, user=user, cron="0 3 * * *", start_date=datetime.date(2024, 1, 1)
    ).pk


def build_victim() -> Victim:
    tenant = TenantFactory(slug=f"{MARKER}-victim", name=f"{MARKER.title()} Victim Corp")
    users = {}
    for key, role in (
        ("admin", Role.ADMIN),
        ("dba", Role.DBA),
        ("owner", Role.MEMBER),
        ("stakeholder", Role.MEMBER),
        ("auditor", Role.AUDITOR),
    ):
        user = UserFactory(username=f"{MARKER}-{key}", email=f"{MARKER}.{key}@victim.example")
        user.first_name, user.last_name = f"{MARKER}first", f"{MARKER}last"
        user.save()
        MembershipFactory(user=user, tenant=tenant, role=role)
        users[key] = user
    owner = users["owner"]
    ds = _ds(tenant, f"{MARKER}-warehouse", f"{MARKER}-db.victim.example")
    private = services.flow_create(
        tenant=tenant, user=owner, name=f"{MARKER}-private-flow", description=f"{MARKER} secret"
    )
    flow = services.flow_create(
        tenant=tenant,
        user=owner,
        name=f"{MARKER}-nightly-load",
        business_scenario=f"{MARKER}-scenario",
        description=f"{MARKER} description",
        variables=[{"name": "region", "type": "constant", "value": f"{MARKER}-eu"}],
    )
    services.flow_stakeholders_set(flow=flow, user=owner, users=[users["stakeholder"].pk])
    extract = services.node_create(
        flow=flow,
        user=owner,
        name=f"{MARKER}-extract",
        type="sql",
        # Reads a table of its own, so the lineage routes have something of A to hide.
        config={"datasource": ds.pk, "sql": f"select '{MARKER}' from {MARKER}_orders"},
    )
    load = services.node_create(flow=flow, user=owner, name=f"{MARKER}-load", type="noop")
    wait = services.node_create(
        flow=flow,
        user=owner,
        name=f"{MARKER}-wait",
        type="dependency_check",
        config={"flow": private.pk},
    )
    edge = services.edge_create(flow=flow, user=owner, upstream=extract.pk, downstream=load.pk)
    services.edge_create(flow=flow, user=owner, upstream=wait.pk, downstream=load.pk)
    schedule = _schedule(flow, owner)
    secret = _secret(tenant, users["admin"], f"{MARKER}_TOKEN", flow=None)
    services.node_create(
        flow=flow,
        user=owner,
        name=f"{MARKER}-call",
        type="http",
        config={
            "url": "https://api.victim.example/",
            "headers": {"Authorization": f"Bearer ${{secret.{MARKER}_TOKEN}}"},
        },
    )
    version = services.flow_publish(flow=flow, user=owner, comment=f"{MARKER} first")
    run, node_run = _runs(flow, owner)
    webhook, delivery = _webhook(tenant, users["admin"], f"https://{MARKER}-hooks.victim.example/")
    robot = account_services.service_account_create(
        tenant=tenant, actor=users["admin"], name=f"{MARKER}-robot", role=Role.MEMBER
    )
    robot_token, _ = account_services.token_issue(
        user=robot.user, actor=users["admin"], name=f"{MARKER}-deploy", scopes=["flows:read"]
    )
    ids = {
        "tenant": tenant.pk,
        "flow": flow.pk,
        "private_flow": private.pk,
        "node": extract.pk,
        "node2": load.pk,
        "edge": edge.pk,
        "version": version.number,
        "datasource": ds.pk,
        "membership": Membership.objects.get(user=owner, tenant=tenant).pk,
        "user": owner.pk,
        "run": run,
        "node_run": node_run,
        "schedule": schedule,
        "secret": secret.pk,
        "service_account": robot.pk,
        "token": robot_token.pk,
        "webhook": webhook,
        "delivery": delivery,
    }
    secrets = [
        f"{MARKER}-secret-value",
        f"{MARKER}-whsecret-value",
        MARKER,
        tenant.slug,
        tenant.name,
        *(u.username for u in users.values()),
        *(u.email for u in users.values()),
    ]
    return Victim(tenant=tenant, users=users, ids=ids, secrets=secrets)


def build_prober() -> Prober:
    tenant = TenantFactory(slug="probe-b", name="Probe B")
    admin = UserFactory(username="probe-admin", is_staff=True)
    member = UserFactory(username="probe-member")
    auditor = UserFactory(username="probe-auditor")
    MembershipFactory(user=admin, tenant=tenant, role=Role.ADMIN)
    MembershipFactory(user=member, tenant=tenant, role=Role.MEMBER)
    MembershipFactory(user=auditor, tenant=tenant, role=Role.AUDITOR)
    ds = _ds(tenant, "probe-warehouse", "")
    flow = services.flow_create(tenant=tenant, user=member, name="probe flow")
    node = services.node_create(
        flow=flow,
        user=member,
        name="probe-extract",
        type="sql",
        config={"datasource": ds.pk, "sql": "select 1"},
    )
    secret = _secret(tenant, admin, "PROBE_TOKEN", flow=flow.pk)
    tokens = {
        "admin": account_services.token_sign_in(user=admin)[1],
        "member": account_services.token_sign_in(user=member)[1],
        "auditor": account_services.token_sign_in(user=auditor)[1],
    }
    return Prober(
        tenant=tenant,
        admin=admin,
        member=member,
        auditor=auditor,
        tokens=tokens,
        ids={"flow": flow.pk, "node": node.pk, "datasource": ds.pk, "secret": secret.pk},
    )


# --------------------------------------------------------------------------- fingerprint


def tracked_models() -> list:
    """Every concrete model of the project apps (history tables included) and a few others."""
    models = [m for label in PROJECT_APPS for m in apps.get_app_config(label).get_models()]
    for dotted in EXTRA_MODELS:
        try:
            models.append(apps.get_model(dotted))
        except LookupError:
            continue
    return [m for m in models if not m._meta.abstract and not m._meta.proxy]


def _has_tenant(model) -> bool:
    return any(f.name == "tenant" for f in model._meta.concrete_fields)


def tenant_rows(model, victim: Victim) -> Q:
    """The rows of `model` that belong to tenant A (the whole table when it cannot tell)."""
    user_ids = [u.pk for u in victim.users.values()]
    base = getattr(model, "instance_type", None) or model  # a history table's tracked model
    if _has_tenant(model):
        return Q(tenant_id=victim.tenant.pk)
    if issubclass(base, Tenant):
        return Q(id=victim.tenant.pk)
    if issubclass(base, User):
        return Q(id__in=user_ids)
    for f in model._meta.concrete_fields:
        if f.many_to_one and f.related_model is User:
            return Q(**{f"{f.attname}__in": user_ids})
        if f.many_to_one and f.related_model is not None and _has_tenant(f.related_model):
            ids = f.related_model._base_manager.filter(tenant_id=victim.tenant.pk).values("pk")
            return Q(**{f"{f.attname}__in": ids})
    return Q()


def fingerprint(victim: Victim) -> dict[str, str]:
    """{table: digest of tenant A's rows}: equal before and after means nothing of A changed."""
    out = {}
    for model in tracked_models():
        rows = list(
            model._base_manager.filter(tenant_rows(model, victim)).order_by("pk").values_list()
        )
        out[model._meta.db_table] = (
            f"{len(rows)}:" + hashlib.sha256(repr(rows).encode()).hexdigest()[:16]
        )
    return out


def fingerprint_diff(before: dict, after: dict) -> list[str]:
    return sorted(t for t in before.keys() | after.keys() if before.get(t) != after.get(t))


def leaks(body: bytes | str, victim: Victim) -> list[str]:
    """Identifying strings of tenant A found in a response body."""
    text = (body.decode("utf-8", "replace") if isinstance(body, bytes) else body).lower()
    return sorted({s for s in victim.secrets if s.lower() in text})
