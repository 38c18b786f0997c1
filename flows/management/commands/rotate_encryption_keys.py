"""Re-encrypt every data source password with the first key of FIELD_ENCRYPTION_KEYS.

Rotation: put the new key first and keep the old ones after it, deploy, run this command,
then drop the old keys. Rows are rotated one by one under a row lock, so the platform keeps
running meanwhile; running it again changes nothing.
"""

from cryptography.fernet import InvalidToken
from django.core.management.base import BaseCommand, CommandError

from flows.datasources.services import data_source_rotate_password
from flows.models import DataSource


class Command(BaseCommand):
    help = "Re-encrypt every data source password with the newest key of FIELD_ENCRYPTION_KEYS."

    def handle(self, *args, **options):
        rotated = current = 0
        failed: list[int] = []
        ids = (
            DataSource.objects.exclude(password_encrypted="")
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        for pk in list(ids):
            try:
                if data_source_rotate_password(datasource_id=pk):
                    rotated += 1
                else:
                    current += 1
            except InvalidToken:
                failed.append(pk)
        self.stdout.write(
            f"rotated {rotated}, already current {current}, undecryptable {len(failed)}"
        )
        if failed:
            raise CommandError(
                "These data sources have passwords no configured key decrypts (ids): "
                + ", ".join(str(pk) for pk in failed)
            )
