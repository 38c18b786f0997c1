"""Recompute the lineage of every flow's published version.

Lineage is recorded when a version is published; run this once for versions published
before lineage existed (or after the SQL parser was upgraded). Each flow is rebuilt in its
own transaction, so it is safe to run while the platform runs, and running it again
changes nothing.
"""

from django.core.management.base import BaseCommand

from flows.lineage.services import lineage_rebuild


class Command(BaseCommand):
    help = "Recompute the lineage (tables read/written, dependencies) of published versions."

    def add_arguments(self, parser):
        parser.add_argument("flows", nargs="*", type=int, help="Only these flow ids.")

    def handle(self, *args, **options):
        count = lineage_rebuild(flows=options["flows"] or None)
        self.stdout.write(f"lineage rebuilt: {count} fact(s)")
