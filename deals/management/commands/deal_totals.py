"""Check the running deal totals (deals.DealTotal) against the live aggregate, or rebuild them.

manage.py deal_totals             # exit status 1 and the differences when they disagree
manage.py deal_totals --rebuild   # recompute from the deals (after a bulk load)
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from deals.services import deal_totals_differences, deal_totals_rebuild


class Command(BaseCommand):
    help = "Check DealTotal against the live aggregate over the deals, or rebuild it."

    def add_arguments(self, parser):
        parser.add_argument(
            "--rebuild", action="store_true", help="recompute the totals from the deals"
        )

    def handle(self, *args, rebuild=False, **options):
        if rebuild:
            rows = deal_totals_rebuild()
            self.stdout.write(_("Deal totals rebuilt: %(rows)s rows.") % {"rows": rows})
            return
        differences = deal_totals_differences()
        if not differences:
            self.stdout.write(_("Deal totals agree with the deals."))
            return
        for d in differences[:50]:
            self.stderr.write(
                _(
                    "team %(team)s, owner %(owner)s, %(state)s %(currency)s: "
                    "deals say %(live)s, totals say %(kept)s"
                )
                % {
                    "team": d["team_id"],
                    "owner": d["owner_id"],
                    "state": d["state"],
                    "currency": d["currency"],
                    "live": d["live"],
                    "kept": d["kept"],
                }
            )
        raise CommandError(
            _("%(n)s deal totals disagree with the deals; run with --rebuild to repair.")
            % {"n": len(differences)}
        )
