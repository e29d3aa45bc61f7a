"""GDPR requests from the command line: export everything held about one contact as JSON, or
erase (anonymise) the contact. Each run is recorded as a PrivacyEvent naming who ran it."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from deals import services
from deals.models import Contact, User


class Command(BaseCommand):
    help = (
        "Export a contact's personal data as JSON (`export ID`) or erase it (`erase ID "
        "--reason … --yes`). --by names the admin answering the request (kept in the audit)."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["export", "erase"])
        parser.add_argument("contact_id", type=int, help="The contact's id (see the admin).")
        parser.add_argument("--by", required=True, help="Username of the admin doing this.")
        parser.add_argument("--reason", default="", help="The request (ticket, email, date).")
        parser.add_argument("--output", help="Write the export to this file (default: stdout).")
        parser.add_argument(
            "--yes", action="store_true", help="Confirm the erasure (it cannot be undone)."
        )

    def handle(self, *args, action, contact_id, by, reason, output, yes, **options):
        actor = User.objects.filter(username=by, is_active=True).first()
        if actor is None:
            raise CommandError(f"No active user “{by}”.")
        contact = Contact.objects.select_related("account").filter(pk=contact_id).first()
        if contact is None:
            raise CommandError(f"No contact with id {contact_id}.")
        try:
            if action == "export":
                self._export(contact, actor, reason, output)
            else:
                self._erase(contact, actor, reason, yes)
        except services.DealError as error:
            raise CommandError(error.message) from None

    def _export(self, contact, actor, reason, output) -> None:
        data = services.contact_personal_data_export(contact=contact, by=actor, reason=reason)
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        if output:
            Path(output).write_text(text, encoding="utf-8")
            self.stderr.write(f"Wrote the personal data of contact #{contact.pk} to {output}.")
        else:
            self.stdout.write(text, ending="")

    def _erase(self, contact, actor, reason, yes) -> None:
        if not yes:
            raise CommandError(
                f"Erasing {contact} (contact #{contact.pk}) cannot be undone: add --yes to "
                "confirm, and --reason to say whose request it is."
            )
        summary = services.contact_erase(contact=contact, by=actor, reason=reason)
        lines = [f"Erased the personal data of contact #{contact.pk}."]
        lines += [f"  {name.replace('_', ' ')}: {count}" for name, count in summary.items()]
        self.stdout.write(self.style.SUCCESS("\n".join(lines)))
