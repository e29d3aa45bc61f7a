"""Read queries about contracts, used by the deal state machine guards and pages."""

from __future__ import annotations

from django.db.models import Q

from .models import OUT_STATUSES, ContractTemplate, ContractVersion

SENDABLE_STATUSES = [ContractVersion.Status.DRAFT, *OUT_STATUSES]


def deal_has_sendable_contract(deal) -> bool:
    """A draft or already-sent version exists (sending records it as sent)."""
    return ContractVersion.objects.filter(deal=deal, status__in=SENDABLE_STATUSES).exists()


def deal_has_completed_signature(deal) -> bool:
    """Signed in time (a late signature counts only once a manager accepted it)."""
    return (
        ContractVersion.objects.filter(deal=deal, status=ContractVersion.Status.COMPLETED)
        .filter(Q(signed_late=False) | Q(late_signature_accepted_at__isnull=False))
        .exists()
    )


def deal_late_signature(deal) -> ContractVersion | None:
    """The newest version signed after the deal closed (or after it was withdrawn), while no
    manager has turned it into the win yet; None when there is none."""
    if deal.state == "closed_won":
        return None
    return (
        ContractVersion.objects.filter(
            deal=deal,
            status=ContractVersion.Status.COMPLETED,
            signed_late=True,
            late_signature_accepted_at__isnull=True,
        )
        .order_by("-number")
        .first()
    )


def deal_contract_versions(deal) -> list[ContractVersion]:
    """The deal's versions, newest first, for the deal page panel."""
    return list(
        ContractVersion.objects.filter(deal=deal).select_related("created_by").order_by("-number")
    )


def default_template() -> ContractTemplate | None:
    """The newest active default template (falls back to the newest active one)."""
    active = ContractTemplate.objects.filter(is_active=True)
    return (
        active.filter(is_default=True).order_by("-version", "-pk").first()
        or active.order_by("-created_at", "-pk").first()
    )


def version_by_envelope(envelope_id: str, provider: str) -> ContractVersion | None:
    if not envelope_id:
        return None
    return (
        ContractVersion.objects.select_related("deal")
        .filter(envelope_id=envelope_id, provider=provider)
        .first()
    )


def signer_versions(contact):
    """The contract versions of the contact's account sent (or to be sent) to their email."""
    if not contact.email:
        return ContractVersion.objects.none()
    return ContractVersion.objects.filter(
        deal__account_id=contact.account_id, signer_email__iexact=contact.email
    ).order_by("deal_id", "number")


def signer_personal_data(contact) -> list[dict]:
    """What the contracts hold about the contact as a signer, for a GDPR export."""
    return [
        {
            "deal_id": v.deal_id,
            "version": v.number,
            "status": v.status,
            "signer_name": v.signer_name,
            "signer_email": v.signer_email,
            "sent_at": v.sent_at,
            "viewed_at": v.viewed_at,
            "completed_at": v.completed_at,
            "declined_at": v.declined_at,
            "status_reason": v.status_reason,
            "signature_audit_trail": v.signature,
        }
        for v in signer_versions(contact)
    ]


def signing_link_for(*, version: ContractVersion, email: str) -> str | None:
    """The signing link of `email` for `version`, or None when they have nothing to sign
    there (not the signer, not out for signature, or not the built-in signer).

    Single signer: the version's signer_email must match. Other apps (the buyer room) call
    only this function to reach the signer.
    """
    if not email or not version.signer_email:
        return None
    if version.signer_email.strip().lower() != email.strip().lower():
        return None
    if version.provider != "builtin" or not version.is_out or not version.envelope_id:
        return None
    from .esign.builtin import signing_url

    return signing_url(version)
