"""Re-encrypt every data source password and secret with the first key of FIELD_ENCRYPTION_KEYS.

Rotation: put the new key first and keep the old ones after it, deploy, run this command,
then drop the old keys. Rows are rotated one by one under a row lock, so the platform keeps
running meanwhile; running it again changes nothing.
"""

from cryptography.fernet import InvalidToken
from django.core.management.base import BaseCommand, CommandError

from flows.datasources.services import data_source_rotate_password
from flows.models import DataSource, Secret
from flows.secrets.services import secret_rotate

# (label, ids of the rows holding an encrypted value, the service re-encrypting one row)
ENCRYPTED = [
    (
        "data sources",
        lambda: DataSource.objects.exclude(password_encrypted="").order_by("pk"),
        lambda pk: data_source_rotate_password(datasource_id=pk),
    ),
    ("secrets", lambda: Secret.objects.order_by("pk"), lambda pk: secret_rotate(secret_id=pk)),
]


class Command(BaseCommand):
    help = (
        "Re-encrypt every data source password and secret with the newest key of "
        "FIELD_ENCRYPTION_KEYS."
    )

    def handle(self, *args, **options):
        failed: list[str] = []
        for label, rows, rotate in ENCRYPTED:
            rotated = current = 0
            for pk in list(rows().values_list("pk", flat=True)):
                try:
                    if rotate(pk):
                        rotated += 1
                    else:
                        current += 1
                except InvalidToken:
                    failed.append(f"{label} {pk}")
            undecryptable = sum(1 for f in failed if f.startswith(label))
            self.stdout.write(
                f"{label}: rotated {rotated}, already current {current}, "
                f"undecryptable {undecryptable}"
            )
        if failed:
            raise CommandError(
                "No configured key decrypts these (kind and id): " + ", ".join(failed)
            )
