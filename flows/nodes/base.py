"""The contract every node type implements: a configuration schema, validation, execution.

One module per type under flows/nodes/ registers one `NodeType` subclass with `@register`.
Validation runs when a node is saved, when a graph is replaced and when a flow is published;
execution runs on a Celery worker with the configuration already rendered (variables
substituted). No executor runs arbitrary shell or Python.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar


@dataclass
class ValidationContext:
    """What validation may look up: only objects of the node's own tenant."""

    tenant_id: int
    flow_id: int | None = None
    # Resolve ids of the same tenant; both return None for unknown or foreign ids.
    datasource: Callable[[Any], Any] = lambda _id: None
    flow: Callable[[Any], Any] = lambda _id: None
    # Names of the nodes of a flow `flow` resolves (its editing and published versions).
    node_names: Callable[[Any], set[str]] = lambda _id: set()


def unseen_flow(flow) -> str:
    """The one answer for a flow a node may not name: it does not exist in the tenant or the
    owner of the node's flow cannot see it (the same words, so nothing about it leaks)."""
    return (
        f"The flow's owner cannot see flow {flow}: it does not exist in this tenant or "
        "is not visible to them."
    )


@dataclass
class ExecutionContext:
    """Everything an executor gets; it must not reach into the ORM for other tenants."""

    tenant_id: int
    flow_id: int
    run_id: int
    node_run_id: int
    node_id: int
    node_name: str
    config: dict  # rendered: ${variables} already substituted
    timeout: float  # seconds for this attempt
    business_time: datetime
    attempt: int = 1
    # State a deferred executor left for its next call (see NodeDeferred).
    state: dict = field(default_factory=dict)
    log: Callable[[str], None] = lambda _msg: None
    # Executors doing long work poll this; stop_all / user stop set it.
    cancelled: Callable[[], bool] = lambda: False
    # An executor registers a callback that aborts its work from another thread (e.g. a
    # PostgreSQL cancel request); the engine calls it when the run is stopped.
    on_cancel: Callable[[Callable[[], None]], None] = lambda _cb: None
    # Run lookups, given by the engine (flows does not read runs itself):
    # run_outcomes(flow_id, start, end, node_name) -> {business time: succeeded}: for each
    # business time in [start, end) at which the flow has runs (other than this one), whether
    # one of them succeeded, or with a node name whether that node succeeded in one of them.
    run_outcomes: Callable[[int, datetime, datetime, str | None], dict[datetime, bool]] = (
        lambda _f, _s, _e, _n: {}
    )
    # The validation lookups in the view of the run's owner (the version's, else the flow's),
    # for what a node checks again when it runs: what the owner may see can change after a
    # save. None: no lookups were given, and a node that needs them fails.
    validation: ValidationContext | None = None
    # child_run(flow_id, parameters, key) -> {"id", "status", "error", "outputs"}: the child
    # run this node run started under `key` (sub-flows, loops), started on the first call.
    child_run: Callable[[int, dict, str], dict] = lambda _f, _p, _k: {}


@dataclass
class NodeResult:
    """A successful execution: output variables / figures, and a branch for conditions."""

    output: dict = field(default_factory=dict)
    branch: str | None = None


@dataclass
class NodeLineage:
    """The tables a node's configuration reads and writes: (data source id, TableRef) pairs
    (flows.lineage.sql.TableRef), and what could not be read (a message per statement)."""

    reads: list[tuple[Any, Any]] = field(default_factory=list)
    writes: list[tuple[Any, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class NodeFailed(Exception):
    """The node failed; the message goes to its log (never include secrets)."""


class NodeDeferred(Exception):
    """Come back later without holding a worker (waits, dependency polling)."""

    def __init__(self, seconds: float, state: dict | None = None, message: str = ""):
        super().__init__(message or f"deferred for {seconds:.0f}s")
        self.seconds = seconds
        self.state = state or {}


class NodeType:
    """Base class of node types. Subclasses set the class attributes and override methods."""

    type: ClassVar[str]
    label: ClassVar[str]
    # JSON Schema of `config`; the console generates the configuration form from it.
    schema: ClassVar[dict] = {"type": "object", "properties": {}, "additionalProperties": False}
    # Outgoing edges of a branching node carry "true" / "false".
    has_branches: ClassVar[bool] = False

    def prepare(self) -> None:
        """Load, once per process, what executing this type needs (modules, a TLS context).

        A worker calls every type's `prepare` before its pool starts (`prepare_all`), so
        its forked processes begin warm: otherwise each process paid for it at its first
        node of the type (about 0.1 s of CPU for an http node), all at once when a burst
        of work met a fresh pool."""

    def normalize(self, config):
        """The configuration in the type's current form (an older form upgraded, so a saved
        node shows today's fields); services store this. Returns `config` when nothing changes."""
        return config

    def validate(self, config: dict, ctx: ValidationContext) -> list[tuple[str, str]]:
        """Return (field, message) pairs; empty when the configuration is valid."""
        return []

    def references(self, config: dict) -> dict[str, list]:
        """Ids this configuration points at: {"datasources": [...], "flows": [...]}."""
        return {"datasources": [], "flows": []}

    def lineage(self, config: dict, datasource: Callable[[Any], Any]) -> NodeLineage:
        """Tables the configuration reads and writes (published versions record it);
        `datasource(id)` is the tenant's DataSource or None."""
        return NodeLineage()

    def output_names(self, config: dict) -> list[str]:
        """Variable names this node exports to downstream nodes, when known before running."""
        return []

    def late_references(self, config) -> set[str]:
        """${names} the node fills in itself while it runs (a loop's ${item.<column>}): not
        variables, so neither validation nor rendering asks for them."""
        return set()

    def outputs_dynamic(self, config: dict) -> bool:
        """True when output_names() may not list every output (e.g. `SELECT *`): a validator
        should then accept references to this node's outputs it cannot check before a run."""
        return False

    def execute(self, ctx: ExecutionContext) -> NodeResult:
        raise NotImplementedError


REGISTRY: dict[str, NodeType] = {}


def register(cls: type[NodeType]) -> type[NodeType]:
    REGISTRY[cls.type] = cls()
    return cls


def get(type_name: str) -> NodeType | None:
    from . import load_all

    load_all()
    return REGISTRY.get(type_name)


def prepare_all() -> None:
    """Every type loaded and prepared (a worker, before its pool starts)."""
    for node_type in all_types().values():
        node_type.prepare()


def all_types() -> dict[str, NodeType]:
    from . import load_all

    load_all()
    return dict(REGISTRY)
