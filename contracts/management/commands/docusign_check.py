"""Check the DocuSign configuration end to end and print what to fix (exit 0 when usable)."""

import sys

from django.core.management.base import BaseCommand

from contracts.esign.docusign import configuration_check

MARKS = {"ok": "OK  ", "warn": "WARN", "fail": "FAIL", "skip": "SKIP"}


class Command(BaseCommand):
    help = (
        "Check the DocuSign setup: key readable, JWT grant (consent), user info, account and "
        "base URI, a REST call, Connect HMAC keys, the webhook URL. Exit status 1 on a problem."
    )

    def handle(self, *args, **options):
        checks = configuration_check()
        for check in checks:
            self.stdout.write(f"{MARKS[check.level]}  {check.name}: {check.detail}")
        failed = [c for c in checks if c.level in ("fail", "skip")]
        if failed:
            self.stdout.write(
                f"\n{len(failed)} problem(s): fix them (docs/docusign.md explains each "
                "setting), then run manage.py docusign_check again."
            )
            sys.exit(1)
        self.stdout.write("\nDocuSign is ready.")
