"""Extension points: calls into the apps built on flows, which flows must not import.

Imports go one way (accounts < flows < scheduling | operations, checked by import-linter in
CI). When a flow service needs scheduling (keep a flow's beat entry in step, delete or
import its schedule), it calls a hook here; scheduling registers the implementation in
its AppConfig.ready(). scheduling and operations, which may not import each other, meet
the same way: scheduling fires runs through `scheduled_runs_create`, which operations
registers, and operations reads a flow's fire times through `fire_times_in_range`, which
scheduling registers.

A hook has one implementation. Hooks with a default do without one (a project without
the scheduling app has no schedules to keep in step); the others fail loudly.
"""

from __future__ import annotations

from accounts.hooks import Hook

# --------------------------------------------------------------------------- scheduling

schedule_sync = Hook(
    "schedule_sync",
    "schedule_sync(flow): keep the flow's beat entry in step with it, in the caller's "
    "transaction (after a publish, unpublish, freeze or edit).",
    default=None,
)
schedule_delete_for_flow = Hook(
    "schedule_delete_for_flow",
    "schedule_delete_for_flow(flow, user): remove the flow's schedule and beat entry "
    "before the flow is deleted.",
    default=None,
)
schedule_import = Hook(
    "schedule_import",
    "schedule_import(flow, data, user): save the schedule of an imported flow document.",
    default=None,
)
schedule_history_model = Hook(
    "schedule_history_model",
    "schedule_history_model(): the historical model of schedules, for a flow's audit trail.",
    default=None,
)
schedule_summary = Hook(
    "schedule_summary",
    "schedule_summary(flow): {'schedule', 'state', 'next_fire'} of the flow's schedule as "
    "the console shows it, or None.",
    default=None,
)
schedule_zones = Hook(
    "schedule_zones",
    "schedule_zones(flow_ids): {flow id: IANA zone} of those flows' schedules, in one query "
    "(the console shows a flow's business and fire times in its schedule's zone).",
    default={},
)
fire_times_in_range = Hook(
    "fire_times_in_range",
    "fire_times_in_range(flow, start, end): the flow's schedule fire times in [start, end], "
    "oldest first (a time-range run's runs); a ValidationError naming start or end.",
)

fire_times_window = Hook(
    "fire_times_window",
    "fire_times_window(flow_id, start, end): the fire times of the flow's enabled schedule in "
    "[start, end), oldest first, from the same calendar as previews and time-range runs (a "
    "dependency check's window); None when the flow has no enabled schedule; ValueError when "
    "the window holds too many to check.",
    default=None,
)

# --------------------------------------------------------------------------- operations

audit_sources = Hook(
    "audit_sources",
    "audit_sources(tenant_id): more sources (flows.timeline.Source) of the tenant's audit "
    "trail; operations adds its O&M actions.",
    default=(),
)

scheduled_runs_create = Hook(
    "scheduled_runs_create",
    "scheduled_runs_create(items): the scheduled runs of [(flow id, fire time)], each at "
    "most once, in the caller's transaction; {(flow id, fire time): run}.",
)
plans_warm = Hook(
    "plans_warm",
    "plans_warm(version_ids, seconds): parse these published versions into this process's "
    "plan cache (most important first, within `seconds`); how many are cached.",
    default=0,
)
