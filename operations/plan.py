"""A run's executable plan: its snapshot parsed into a Dag and node specs, cached per process.

Parsing a 1,000-node snapshot costs milliseconds, so every worker keeps recent plans in an
LRU keyed by the published version (shared by all its runs) or by the run (test runs).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from operations.engine.core import Dag

# The cache holds at most this many plans, and at most this many nodes in all (a few
# big flows must not push out the many small ones a minute of schedules fires).
PLAN_CACHE_SIZE = 4096
PLAN_CACHE_NODES = 200_000


@dataclass(frozen=True)
class NodeSpec:
    """One node of a plan, as the snapshot recorded it."""

    id: int
    name: str
    type: str
    config: dict
    retries: int = 0
    retry_interval: int = 60
    timeout: int = 3600
    priority: int = 0
    # The node's own variable definitions (override the flow's for this node).
    variables: tuple = ()
    trigger_rule: str = "all_success"
    enabled: bool = True


@dataclass
class Plan:
    """The DAG of a run with its node specs and flow variables."""

    dag: Dag
    nodes: dict[int, NodeSpec]
    variables: list
    # Variables resolve on the wall clock of the flow's schedule (else the server's zone).
    zone: ZoneInfo | None = None
    # The flow's policies as the snapshot recorded them (None: the flow's own apply).
    error_policy: str | None = None
    concurrency_policy: str | None = None
    # The flow's alert settings as the snapshot recorded them (None: the flow's own apply).
    notifications: dict | None = None
    # The run parameters the version declares (flows.parameters); a run's values are its own.
    parameters: list = field(default_factory=list)
    # The flow's deadline as the snapshot recorded it ({"after_fire_s"} | {"at"} | None).
    deadline: dict | None = None
    topo_index: dict = field(default_factory=dict)
    _ancestors: dict = field(default_factory=dict)
    _refs: dict = field(default_factory=dict)
    _first: dict = field(default_factory=dict)

    def ancestors(self, node_id: int) -> list[int]:
        """Every ancestor of a node, farthest first (so nearer outputs override farther ones)."""
        cached = self._ancestors.get(node_id)
        if cached is None:
            seen: set = set()
            stack = list(self.dag.upstream(node_id))
            while stack:
                n = stack.pop()
                if n not in seen:
                    seen.add(n)
                    stack.extend(self.dag.upstream(n))
            cached = sorted(seen, key=self.topo_index.__getitem__)
            self._ancestors[node_id] = cached
        return cached

    def first_step(self, policy: str) -> list[int] | None:
        """The nodes a fresh run queues first, highest priority first (core.decide over an
        all-pending run), or None when its first step does more than queue nodes."""
        if policy not in self._first:
            from operations.engine import core

            states = {n: core.PENDING for n in self.nodes}
            decision = core.decide(self.dag, states, policy=policy)
            # Only queueing: every transition is to queued, and the run goes on.
            plain = (
                decision.ready
                and len(decision.transitions()) == len(decision.ready)
                and not decision.run_status
            )
            self._first[policy] = (
                sorted(decision.ready, key=lambda n: -self.nodes[n].priority) if plain else None
            )
        return self._first[policy]

    def needs_outputs(self, node_id: int) -> bool:
        """True when the node's configuration references something only an upstream can export."""
        cached = self._refs.get(node_id)
        if cached is None:
            from flows.variables import BUILTIN_NAMES, find_references

            spec = self.nodes[node_id]
            defined = {
                d.get("name")
                for d in [*self.variables, *spec.variables, *self.parameters]
                if isinstance(d, dict)
            }
            cached = bool(find_references(self.nodes[node_id].config) - BUILTIN_NAMES - defined)
            self._refs[node_id] = cached
        return cached


class SnapshotError(ValueError):
    """A snapshot that cannot be run (for example a cycle)."""


def _int(value, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def parse_snapshot(snapshot: dict) -> Plan:
    """Build a Plan from a flow snapshot (flows.snapshot.flow_snapshot's format)."""
    nodes: dict[int, NodeSpec] = {}
    for raw in snapshot.get("nodes") or []:
        spec = NodeSpec(
            id=int(raw["id"]),
            name=str(raw.get("name") or raw["id"]),
            type=str(raw.get("type") or ""),
            config=raw.get("config") or {},
            retries=_int(raw.get("retries"), 0),
            retry_interval=_int(raw.get("retry_interval"), 60),
            timeout=_int(raw.get("timeout"), 3600),
            priority=_int(raw.get("priority"), 0),
            variables=tuple(raw.get("variables") or ()),
            trigger_rule=str(raw.get("trigger_rule") or "all_success"),
            enabled=raw.get("enabled") is not False,
        )
        nodes[spec.id] = spec
    edges = []
    for raw in snapshot.get("edges") or []:
        if isinstance(raw, dict):
            edges.append((int(raw["upstream"]), int(raw["downstream"]), raw.get("branch") or None))
        else:
            edges.append(tuple(raw))
    try:
        dag = Dag.build(
            nodes.keys(),
            edges,
            rules={n: spec.trigger_rule for n, spec in nodes.items()},
            disabled=[n for n, spec in nodes.items() if not spec.enabled],
        )
    except ValueError as exc:
        raise SnapshotError(str(exc)) from exc
    return Plan(
        dag=dag,
        nodes=nodes,
        variables=list(snapshot.get("variables") or []),
        zone=_zone(snapshot),
        error_policy=(snapshot.get("flow") or {}).get("error_policy") or None,
        concurrency_policy=(snapshot.get("flow") or {}).get("concurrency_policy") or None,
        notifications=(snapshot.get("flow") or {}).get("notifications"),
        parameters=list(snapshot.get("parameters") or []),
        deadline=(snapshot.get("flow") or {}).get("deadline"),
        topo_index={n: i for i, n in enumerate(dag.topological_order)},
    )


def _zone(snapshot: dict) -> ZoneInfo:
    from django.conf import settings

    schedule = snapshot.get("schedule") or {}
    for name in (schedule.get("timezone"), settings.TIME_ZONE, "UTC"):
        try:
            return ZoneInfo(str(name))
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            continue
    return ZoneInfo("UTC")


_cache: OrderedDict = OrderedDict()
_lock = threading.Lock()
_nodes_cached = [0]


def _store(key, plan: Plan) -> Plan:
    """Cache a plan under its key (caller holds _lock); the oldest go past the bounds."""
    if key not in _cache:
        _cache[key] = plan
        _nodes_cached[0] += len(plan.nodes)
    while len(_cache) > 1 and (
        len(_cache) > PLAN_CACHE_SIZE or _nodes_cached[0] > PLAN_CACHE_NODES
    ):
        _, old = _cache.popitem(last=False)
        _nodes_cached[0] -= len(old.nodes)
    return _cache[key]


def plan_for(*, run_id: int, version_id: int | None, stamp, snapshot: dict | None = None) -> Plan:
    """The run's plan, parsed once per process (reads the snapshot only on a cache miss).

    `stamp` is the creation time of the version (or of the run for test runs): ids can be
    reused after a database is emptied (SQLite), a creation time with them cannot.
    """
    key = ("version", version_id, stamp) if version_id else ("run", run_id, stamp)
    with _lock:
        plan = _cache.get(key)
        if plan is not None:
            _cache.move_to_end(key)
            return plan
    if snapshot is None:
        snapshot = load_snapshot(run_id=run_id, version_id=version_id)
    plan = parse_snapshot(snapshot)
    with _lock:
        plan = _store(key, plan)
    return plan


def seed_plan(run, plan: Plan) -> None:
    """Cache the plan of a run just created (its creator decides its first step)."""
    stamp = run.version.created_at if run.version_id else run.created_at
    key = ("version", run.version_id, stamp) if run.version_id else ("run", run.pk, stamp)
    with _lock:
        _store(key, plan)


def plan_of_run(run) -> Plan:
    """The plan of a FlowRun instance (services that already hold the row)."""
    stamp = run.created_at
    if run.version_id:
        stamp = run.version.created_at
    snapshot = run.__dict__.get("snapshot") if not run.version_id else None
    return plan_for(run_id=run.pk, version_id=run.version_id, stamp=stamp, snapshot=snapshot)


def plans_for_versions(versions) -> dict:
    """Plans of published versions by id, parsing only cache misses (one query for them all)."""
    from flows.models import FlowVersion

    plans, missing = {}, {}
    with _lock:
        for version in versions:
            key = ("version", version.pk, version.created_at)
            plan = _cache.get(key)
            if plan is None:
                missing[version.pk] = key
            else:
                _cache.move_to_end(key)
                plans[version.pk] = plan
    if missing:
        rows = FlowVersion.objects.filter(pk__in=list(missing)).values_list("pk", "snapshot")
        for pk, snapshot in rows:
            try:
                plan = parse_snapshot(snapshot)
            except (SnapshotError, KeyError, TypeError, ValueError):
                continue  # not runnable: the caller leaves its flows alone
            with _lock:
                plans[pk] = _store(missing[pk], plan)
    return plans


# Versions read from the database per query while warming the cache.
WARM_CHUNK = 200


def plans_warm(*, version_ids, seconds: float) -> int:
    """Parse these published versions into the cache, in the order given, within `seconds`.

    `version_ids` may be a queryset: only as many as the cache holds are read. Returns how
    many plans are cached (the `plans_warm` hook scheduling calls for a new worker).
    """
    from flows.models import FlowVersion

    started = time.monotonic()
    ids = list(version_ids[:PLAN_CACHE_SIZE])
    warmed = 0
    for start in range(0, len(ids), WARM_CHUNK):
        if time.monotonic() - started > seconds:
            break
        chunk = FlowVersion.objects.filter(pk__in=ids[start : start + WARM_CHUNK])
        warmed += len(plans_for_versions(list(chunk.only("pk", "created_at"))))
    return warmed


def load_snapshot(*, run_id: int, version_id: int | None) -> dict:
    from flows.models import FlowVersion
    from operations.models import FlowRun

    if version_id:
        return FlowVersion.objects.values_list("snapshot", flat=True).get(pk=version_id)
    return FlowRun.objects.values_list("snapshot", flat=True).get(pk=run_id) or {}


def clear_cache() -> None:
    with _lock:
        _cache.clear()
        _nodes_cached[0] = 0
