"""Load (idempotently) a demo tenant with an admin, a DBA, a member and an auditor; print logins."""

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils.module_loading import import_string

from accounts.choices import Role
from accounts.models import Membership, Tenant, User

DEMO_USERS = [
    ("demo-admin", Role.ADMIN, "demo-admin-pass-2024"),
    ("demo-dba", Role.DBA, "demo-dba-pass-2024"),
    ("demo-member", Role.MEMBER, "demo-member-pass-2024"),
    ("demo-auditor", Role.AUDITOR, "demo-auditor-pass-2024"),
]
PLATFORM_USER = ("platform", "platform-pass-2024")

# Other apps' demo content (sample flows…), loaded after the users exist.
DEMO_LOADERS = ["flows.demo.load"]


class Command(BaseCommand):
    help = "Create or refresh the demo tenant and its users; safe to run any number of times."

    @transaction.atomic
    def handle(self, *args, **options):
        tenant, _ = Tenant.objects.get_or_create(slug="demo", defaults={"name": "Demo"})
        users = {}
        for username, role, password in DEMO_USERS:
            user, _ = User.objects.get_or_create(
                username=username, defaults={"email": f"{username}@example.com"}
            )
            user.set_password(password)
            # The admin's role opens the tenant's Django admin pages; is_staff is the platform's.
            user.is_staff = False
            user.default_tenant = tenant
            user.save()
            Membership.objects.update_or_create(
                user=user, tenant=tenant, defaults={"role": role, "is_active": True}
            )
            users[role] = user
        root, _ = User.objects.get_or_create(username=PLATFORM_USER[0])
        root.set_password(PLATFORM_USER[1])
        root.is_staff = root.is_superuser = True
        root.save()
        for path in DEMO_LOADERS:
            import_string(path)(tenant=tenant, users=users, stdout=self.stdout)

        self.stdout.write(
            self.style.SUCCESS(
                "Demo tenant 'demo' is ready. Sign in at http://127.0.0.1:8000/ with:"
            )
        )
        for username, role, password in DEMO_USERS:
            self.stdout.write(f"  {role:<7} {username:<12} password: {password}")
        self.stdout.write(f"  platform superuser {PLATFORM_USER[0]} password: {PLATFORM_USER[1]}")
