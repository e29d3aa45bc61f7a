"""Personal data requests about a contact (deals.signals): what the contracts hold about them
as a signer, and erasing it. Receivers only call selectors and services."""

from __future__ import annotations

from . import selectors, services


def collect(sender, *, contact, **kwargs) -> dict[str, list[dict]]:
    return {"contract_signatures": selectors.signer_personal_data(contact)}


def erase(sender, *, contact, by, **kwargs) -> dict[str, int]:
    return services.signer_personal_data_erase(contact=contact, by=by)
