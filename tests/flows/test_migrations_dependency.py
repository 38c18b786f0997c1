"""The data migration that moves saved dependency checks to the cycle/offset/require form."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("flows", "0004_tasknode_variables")]
AFTER = [("flows", "0005_dependency_check_cycle_form")]


@pytest.mark.django_db
def test_saved_dependency_checks_take_the_new_form_with_a_history_row(tenant, member_user):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        # Given: nodes saved in the older form, and one already in the new form
        old = executor.loader.project_state(BEFORE).apps
        flow = old.get_model("flows", "TaskFlow").objects.create(
            tenant_id=tenant.pk, name="f", owner_id=member_user.pk
        )
        Node = old.get_model("flows", "TaskNode")

        def node(name, config):
            return Node.objects.create(
                tenant_id=tenant.pk, flow=flow, name=name, type="dependency_check", config=config
            )

        older = node("older", {"flow": 7, "business_date_offset_days": -1, "poll_s": 5})
        bare = node("bare", {"flow": 7})
        newer = node("newer", {"flow": 7, "cycle": "hour", "offset": -1, "require": "all"})

        # When the migration runs
        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
    finally:
        if connection.vendor == "postgresql":
            # The rows above leave deferred foreign-key checks pending in this test's
            # transaction; PostgreSQL refuses to ALTER a table with pending trigger events.
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        MigrationExecutor(connection).migrate(
            MigrationExecutor(connection).loader.graph.leaf_nodes()
        )

    # Then: the same meaning in today's form, each change in the node's history
    from flows.models import TaskNode

    assert TaskNode.objects.get(pk=older.pk).config == {
        "flow": 7,
        "poll_s": 5,
        "cycle": "day",
        "offset": -1,
        "require": "any",
    }
    assert TaskNode.objects.get(pk=bare.pk).config == {
        "flow": 7,
        "cycle": "day",
        "offset": 0,
        "require": "any",
    }
    assert TaskNode.objects.get(pk=newer.pk).config["cycle"] == "hour"
    rows = TaskNode.history.filter(id=older.pk)
    assert [r.history_change_reason for r in rows] == [
        "dependency check moved to the cycle/offset/require form"
    ]
    assert not TaskNode.history.filter(id=newer.pk).exists()
