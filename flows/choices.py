from django.db import models


class ErrorPolicy(models.TextChoices):
    COMPLETE_RUNNING = "complete_running", "Complete running tasks"
    STOP_ALL = "stop_all", "Immediately stop all tasks"
    COMPLETE_UNRELATED = "complete_unrelated", "Complete unrelated tasks"


class ConcurrencyPolicy(models.TextChoices):
    SKIP = "skip", "Skip"
    IGNORE = "ignore", "Ignore (run independently)"
    PARALLEL_SAME_NODE = "parallel_same_node", "Run in parallel, mode 1 (wait for the same node)"
    PARALLEL_DOWNSTREAM = (
        "parallel_downstream",
        "Run in parallel, mode 2 (wait for the node and its downstream)",
    )


class FlowStatus(models.TextChoices):
    DRAFT = "draft", "Never published"
    PUBLISHED = "published", "Published"
    UNPUBLISHED = "unpublished", "Unpublished"


class Engine(models.TextChoices):
    POSTGRESQL = "postgresql", "PostgreSQL"
    MYSQL = "mysql", "MySQL / MariaDB"
    SQLITE = "sqlite", "SQLite"


class TriggerRule(models.TextChoices):
    """How a node combines its upstreams; the rule itself lives in operations.engine.core
    (tests/flows/test_trigger_rules.py holds the two lists equal)."""

    ALL_SUCCESS = "all_success", "All upstreams succeeded (default)"
    ALL_DONE = "all_done", "All upstreams finished, whatever their outcome"
    ONE_SUCCESS = "one_success", "At least one upstream succeeded"
    ONE_FAILED = "one_failed", "At least one upstream failed"
    ALL_FAILED = "all_failed", "Every upstream failed"
    NONE_FAILED = "none_failed", "No upstream failed (skipped ones count)"


class Branch(models.TextChoices):
    TRUE = "true", "true"
    FALSE = "false", "false"


# Object permissions held in django-guardian's direct-FK tables for TaskFlow.
PERM_VIEW = "view_taskflow"
PERM_CHANGE = "change_taskflow"
PERM_OPERATE = "operate_taskflow"
OWNER_PERMS = (PERM_VIEW, PERM_CHANGE, PERM_OPERATE)
STAKEHOLDER_PERMS = (PERM_VIEW, PERM_OPERATE)


class LineageAccess(models.TextChoices):
    READ = "read", "reads"
    WRITE = "write", "writes"
    DEPENDS = "depends", "waits for (dependency check)"
    UNPARSED = "unparsed", "SQL the parser could not read"
