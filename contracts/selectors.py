"""Read queries about contracts, used by the deal state machine guards and pages."""

from .models import ContractVersion

SENDABLE_STATUSES = [
    ContractVersion.Status.DRAFT,
    ContractVersion.Status.SENT,
    ContractVersion.Status.DELIVERED,
    ContractVersion.Status.VIEWED,
]


def deal_has_sendable_contract(deal) -> bool:
    """A draft or already-sent version exists (sending records it as sent)."""
    return ContractVersion.objects.filter(deal=deal, status__in=SENDABLE_STATUSES).exists()


def deal_has_completed_signature(deal) -> bool:
    return ContractVersion.objects.filter(
        deal=deal, status=ContractVersion.Status.COMPLETED
    ).exists()
