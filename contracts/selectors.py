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
        ContractVersion.objects.filter(deal=deal)
        .select_related("created_by")
        .prefetch_related("signers")
        .order_by("-number")
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
    return (
        ContractVersion.objects.filter(deal__account_id=contact.account_id)
        .filter(Q(signer_email__iexact=contact.email) | Q(signers__email__iexact=contact.email))
        .distinct()
        .order_by("deal_id", "number")
    )


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
            "as_signer": [
                {
                    "routing_order": s.routing_order,
                    "role": s.role,
                    "name": s.name,
                    "email": s.email,
                    "status": s.status,
                    "due_at": s.due_at.isoformat() if s.due_at else None,
                    "viewed_at": s.viewed_at.isoformat() if s.viewed_at else None,
                    "signed_at": s.signed_at.isoformat() if s.signed_at else None,
                    "declined_at": s.declined_at.isoformat() if s.declined_at else None,
                    "ip": s.ip,
                    "user_agent": s.user_agent,
                    "typed_name": s.typed_name,
                    "consent_text": s.consent_text,
                    "decline_reason": s.decline_reason,
                }
                for s in v.signers.all()
                if s.email.lower() == contact.email.lower()
            ],
        }
        for v in signer_versions(contact)
    ]


def version_signers(version) -> list:
    """The version's signers in signing order."""
    from .models import ContractSigner

    return list(ContractSigner.objects.filter(version=version).order_by("routing_order", "pk"))


def signing_link_for(*, version, email: str) -> str | None:
    """The URL at which the person with this email signs `version` now; None when they are
    not one of its signers, it is not (or no longer) their turn, or the version is not a
    built-in contract out for signature."""
    from .esign.builtin import signing_url
    from .models import ContractSigner

    email = (email or "").strip()
    if not email or version is None or version.provider != "builtin" or not version.is_out:
        return None
    if not version.envelope_id:
        return None
    person = (
        ContractSigner.objects.filter(version=version, email__iexact=email)
        .order_by("routing_order", "pk")
        .first()
    )
    if person is None or not person.is_due:
        return None
    return signing_url(version, person)


def due_signer(version):
    """The first signer whose turn it is (reminders speak to them), else None. Uses the
    version's prefetched signers when there are (one query otherwise)."""
    if version is None:
        return None
    due = [s for s in version.signers.all() if s.is_due]
    return min(due, key=lambda s: (s.routing_order, s.pk)) if due else None
