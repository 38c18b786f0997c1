"""Roles of a tenant membership and the scopes an API token may carry."""

from django.db import models


class Role(models.TextChoices):
    ADMIN = "admin", "Tenant admin"
    DBA = "dba", "DBA"
    MEMBER = "member", "Member"
    AUDITOR = "auditor", "Auditor"


# Roles that are default stakeholders of every flow and may change any flow's owner.
PRIVILEGED_ROLES = frozenset({Role.ADMIN, Role.DBA})
# Roles that read everything in their tenant and change nothing.
READ_ONLY_ROLES = frozenset({Role.AUDITOR})
# Roles that read the tenant-wide audit trail.
AUDIT_ROLES = frozenset({Role.ADMIN, Role.AUDITOR})
# Roles that may use their tenant's pages of the Django admin: admins change, auditors read.
ADMIN_SITE_ROLES = frozenset({Role.ADMIN, Role.AUDITOR})


class Scope(models.TextChoices):
    """What an API token may be used for; the account's role still decides the rest."""

    FLOWS_READ = "flows:read", "Read flows, nodes, versions, schedules, data sources, members"
    FLOWS_WRITE = "flows:write", "Change flows, nodes, schedules and data sources"
    RUNS_READ = "runs:read", "Read runs, node runs and logs"
    RUNS_WRITE = "runs:write", "Start runs and act on them (stop, rerun, mark success …)"
    ADMIN = "admin", "Tenant administration: members, service accounts, the audit trail"


ALL_SCOPES = tuple(Scope.values)
