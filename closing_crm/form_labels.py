"""Form labels Django derives from field and model field names ("First name", "Email"):
listed here so `makemessages` puts them in the catalogue. The field templates translate every
label at render time ({% translate field.label %}), so no model needs a verbose_name (and no
migration) for its form to speak German."""

from django.utils.translation import gettext_noop

AUTO_LABELS = [
    gettext_noop("Account"),
    gettext_noop("Agenda"),
    gettext_noop("Amount"),
    gettext_noop("Billing"),
    gettext_noop("Category"),
    gettext_noop("Channel"),
    gettext_noop("Competition"),
    gettext_noop("Contact"),
    gettext_noop("Currency"),
    gettext_noop("Deal"),
    gettext_noop("Decision"),
    gettext_noop("Decision criteria"),
    gettext_noop("Decision process"),
    gettext_noop("Email"),
    gettext_noop("First name"),
    gettext_noop("Identified pain"),
    gettext_noop("Industry"),
    gettext_noop("Job title"),
    gettext_noop("Last name"),
    gettext_noop("Location"),
    gettext_noop("Metrics"),
    gettext_noop("Next step"),
    gettext_noop("Note"),
    gettext_noop("Outcome"),
    gettext_noop("Owner"),
    gettext_noop("Phone"),
    gettext_noop("Role"),
    gettext_noop("Sort"),
    gettext_noop("Start date"),
    gettext_noop("State"),
    gettext_noop("Subject"),
    gettext_noop("Team"),
    gettext_noop("Website"),
]
