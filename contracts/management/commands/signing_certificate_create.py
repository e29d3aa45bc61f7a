"""Make a self-signed certificate and key that seal completed contracts (a new installation)."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from contracts.sealing import create_self_signed


class Command(BaseCommand):
    help = (
        "Create a self-signed certificate and key for sealing signed contracts (PAdES), at "
        "SIGNING_CERT_FILE / SIGNING_KEY_FILE (default var/signing/). Production can configure "
        "a certificate from a trusted CA instead."
    )

    def add_arguments(self, parser):
        parser.add_argument("--cert", default=settings.SIGNING_CERT_FILE)
        parser.add_argument("--key", default=settings.SIGNING_KEY_FILE)
        parser.add_argument("--name", default="Closing CRM document seal", help="Common name.")
        parser.add_argument("--days", type=int, default=3650)
        parser.add_argument(
            "--if-missing", action="store_true", help="Do nothing when both files exist."
        )
        parser.add_argument(
            "--force", action="store_true", help="Replace an existing certificate and key."
        )

    def handle(self, *args, **options):
        cert, key = Path(options["cert"]), Path(options["key"])
        if cert.exists() and key.exists() and options["if_missing"]:
            return
        if (cert.exists() or key.exists()) and not options["force"]:
            raise CommandError(
                f"{cert if cert.exists() else key} already exists: contracts sealed with it "
                "are checked against it. Use --force to replace it anyway."
            )
        if options["days"] < 1:
            raise CommandError("--days must be at least 1.")
        fingerprint = create_self_signed(
            cert_file=cert,
            key_file=key,
            common_name=options["name"],
            days=options["days"],
            password=settings.SIGNING_KEY_PASSWORD,
        )
        self.stdout.write(
            self.style.SUCCESS(f"Signing certificate written to {cert} (key: {key}).")
        )
        self.stdout.write(f"SHA-256 fingerprint: {fingerprint}")
