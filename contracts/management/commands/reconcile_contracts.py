"""Poll the e-signature provider for envelopes whose webhooks never came; expire old links."""

from django.core.management.base import BaseCommand, CommandError

from contracts.esign import ProviderError
from contracts.services import contracts_reconcile


class Command(BaseCommand):
    help = "Reconcile contract statuses with DocuSign (list_status_changes) and expire links."

    def handle(self, *args, **options):
        try:
            counts = contracts_reconcile()
        except ProviderError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"{counts['checked']} envelopes checked, {counts['applied']} applied, "
            f"{counts['expired']} links expired."
        )
