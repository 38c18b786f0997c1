"""Dependency checks saved in the older form {"flow", "business_date_offset_days"} take
today's form {"flow", "cycle": "day", "offset", "require": "any"}, which means the same
(a succeeded run of that flow on the business date `offset` days away), so the node's form
shows the fields it has. Published versions keep their snapshot; the node type reads both.
Each change gets a history row, so the audit trail says what changed and why.
"""

from django.db import migrations
from django.utils import timezone

LEGACY = "business_date_offset_days"
REASON = "dependency check moved to the cycle/offset/require form"


def forwards(apps, schema_editor):
    TaskNode = apps.get_model("flows", "TaskNode")
    HistoricalTaskNode = apps.get_model("flows", "HistoricalTaskNode")
    for node in TaskNode.objects.filter(type="dependency_check").order_by("pk"):
        config = node.config if isinstance(node.config, dict) else None
        if config is None or any(k in config for k in ("cycle", "offset", "require")):
            continue
        new = {k: v for k, v in config.items() if k != LEGACY}
        new.update(cycle="day", offset=config.get(LEGACY) or 0, require="any")
        node.config = new
        node.save(update_fields=["config"])
        HistoricalTaskNode.objects.create(
            id=node.pk,
            tenant_id=node.tenant_id,
            flow_id=node.flow_id,
            name=node.name,
            type=node.type,
            config=new,
            position_x=node.position_x,
            position_y=node.position_y,
            retries=node.retries,
            retry_interval=node.retry_interval,
            timeout=node.timeout,
            priority=node.priority,
            variables=node.variables,
            created_at=node.created_at,
            history_date=timezone.now(),
            history_type="~",
            history_change_reason=REASON,
        )


class Migration(migrations.Migration):
    dependencies = [("flows", "0004_tasknode_variables")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
