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
