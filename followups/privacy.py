"""Personal data requests about a contact (deals.signals): the follow-ups addressed to them,
and erasing them. Receivers only call selectors and services."""

from __future__ import annotations

from . import selectors, services


def collect(sender, *, contact, **kwargs) -> dict[str, list[dict]]:
    return {"follow_up_emails": selectors.recipient_personal_data(contact)}


def erase(sender, *, contact, by, **kwargs) -> dict[str, int]:
    return services.recipient_personal_data_erase(contact=contact, by=by)
