from django.db import models


class Role(models.TextChoices):
    ADMIN = "admin", "Tenant admin"
    DBA = "dba", "DBA"
    MEMBER = "member", "Member"


# Roles that are default stakeholders of every flow and may change any flow's owner.
PRIVILEGED_ROLES = frozenset({Role.ADMIN, Role.DBA})
