"""Print every disagreement between deals, their contract versions and the signer; exit 1."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from contracts.consistency import close_disagreements


class Command(BaseCommand):
    help = (
        "Scan for deals whose state disagrees with their contracts (agreement sent with nothing "
        "out, a live link or envelope on a closed deal, a won deal without a signature or "
        "override, terms that differ from the signed version). Exit status 1 if any."
    )

    def handle(self, *args, **options):
        found = close_disagreements()
        for disagreement in found:
            self.stdout.write(str(disagreement))
        if found:
            raise CommandError(f"{len(found)} disagreement(s) between deals and contracts.")
        self.stdout.write(self.style.SUCCESS("Deals and contracts agree."))
