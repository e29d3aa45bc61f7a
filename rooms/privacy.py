"""Personal data requests about a contact (deals.signals): what the rooms hold about them as
a buyer, and erasing it. Receivers only call services."""

from __future__ import annotations

from . import services


def collect(sender, *, contact, **kwargs) -> dict[str, list[dict]]:
    return services.contact_room_data(contact=contact)


def erase(sender, *, contact, by, **kwargs) -> dict[str, int]:
    return services.contact_room_data_erase(contact=contact, by=by)
