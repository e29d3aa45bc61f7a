"""The invariants of the close: where a deal, its contract versions and the signer disagree.

One function reads them all; `manage.py check_close_consistency` prints them and the
property-based test checks them after every step.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q

from deals.models import CLOSED_STATES, Deal, DealEvent, DealState

from . import documents
from .models import (
    OUT_STATUSES,
    OUTSTANDING_STATUSES,
    WITH_BUYER_STATUSES,
    ContractSigner,
    ContractVersion,
)

Status = ContractVersion.Status


@dataclass(frozen=True)
class Disagreement:
    deal_id: int
    deal_title: str
    problem: str

    def __str__(self) -> str:
        return f"deal {self.deal_id} “{self.deal_title}”: {self.problem}"


def close_disagreements(deals=None) -> list[Disagreement]:
    """Every disagreement among `deals` (default: all deals), oldest deal first.

    - a live deal in agreement_sent / follow_up with no version out (or failed, to retry);
    - a closed or archived deal with a version still out for signature (an open envelope
      or a live built-in link);
    - a won deal with neither a signature that counts nor a manager's override reason;
    - a won deal whose terms differ from the version that won it, with no audited
      amendment since.
    """
    deals = Deal.objects.all() if deals is None else deals
    found: list[Disagreement] = []
    versions = ContractVersion.objects.filter(deal=OuterRef("pk"))
    waiting = (
        deals.filter(
            state__in=[DealState.AGREEMENT_SENT, DealState.FOLLOW_UP], archived_at__isnull=True
        )
        .annotate(out=Exists(versions.filter(status__in=OUTSTANDING_STATUSES)))
        .filter(out=False)
    )
    for deal in waiting.order_by("pk"):
        found.append(
            Disagreement(
                deal.pk,
                deal.title,
                f"is “{deal.get_state_display()}” but no contract version is out for signature",
            )
        )
    closed = deals.filter(Q(state__in=CLOSED_STATES) | Q(archived_at__isnull=False))
    for version in (
        ContractVersion.objects.filter(deal__in=closed, status__in=OUT_STATUSES)
        .select_related("deal")
        .order_by("deal_id", "number")
    ):
        where = "archived" if version.deal.archived_at else version.deal.get_state_display()
        found.append(
            Disagreement(
                version.deal_id,
                version.deal.title,
                f"is {where} but contract version {version.number} is still "
                f"“{version.get_status_display()}” ({version.provider or 'no provider'})",
            )
        )
    counted = versions.filter(status=Status.COMPLETED).filter(
        Q(signed_late=False) | Q(late_signature_accepted_at__isnull=False)
    )
    won = deals.filter(state=DealState.CLOSED_WON)
    for deal in (
        won.annotate(signed=Exists(counted)).filter(signed=False, won_override_reason="")
    ).order_by("pk"):
        found.append(
            Disagreement(
                deal.pk, deal.title, "is won without a completed signature or an override reason"
            )
        )
    found += _signer_disagreements(deals)
    signed = (
        ContractVersion.objects.filter(deal__in=won, status=Status.COMPLETED)
        .filter(Q(signed_late=False) | Q(late_signature_accepted_at__isnull=False))
        .select_related("deal")
        .order_by("deal_id", "-number")
    )
    seen: set[int] = set()
    for version in signed:
        if version.deal_id in seen:
            continue
        seen.add(version.deal_id)
        differences = documents.terms_differences(version.deal, version.terms)
        if not differences:
            continue
        since = version.late_signature_accepted_at or version.completed_at
        amended = DealEvent.objects.filter(
            deal_id=version.deal_id, kind=DealEvent.Kind.EDITED, data__amended=True
        )
        if since is not None:
            amended = amended.filter(created_at__gte=since)
        if amended.exists():
            continue
        found.append(
            Disagreement(
                version.deal_id,
                version.deal.title,
                f"has terms that differ from signed version {version.number} "
                f"({', '.join(differences)}) with no audited amendment",
            )
        )
    return found


def _signer_disagreements(deals) -> list[Disagreement]:
    """Where a version and its signers disagree:

    - a signed version with a signer who has not signed (the last signature completes it);
    - a built-in version out with the buyer while nobody can sign (no signer due);
    - a signer who signed before everyone of an earlier routing order had signed;
    - a declined built-in version with no signer who declined.
    """
    found: list[Disagreement] = []
    versions = (
        ContractVersion.objects.filter(deal__in=deals)
        .filter(signers__isnull=False)
        .distinct()
        .select_related("deal")
        .prefetch_related("signers")
        .order_by("deal_id", "number")
    )
    for version in versions:
        signers = sorted(version.signers.all(), key=lambda s: (s.routing_order, s.pk))
        say = []
        if version.status == Status.COMPLETED:
            say += [
                f"contract version {version.number} is signed but {s.name} has not signed"
                for s in signers
                if s.status != ContractSigner.Status.SIGNED
            ]
        if version.provider == "builtin":
            waiting = [s for s in signers if s.status != ContractSigner.Status.SIGNED]
            if (
                version.status in WITH_BUYER_STATUSES
                and waiting
                and not any(s.is_due for s in waiting)
            ):
                say.append(
                    f"contract version {version.number} is out but no signer can sign it "
                    f"({', '.join(s.name for s in waiting)} waiting)"
                )
            if version.status == Status.DECLINED and not any(
                s.status == ContractSigner.Status.DECLINED for s in signers
            ):
                say.append(f"contract version {version.number} is declined by none of its signers")
            for person in signers:
                if person.status != ContractSigner.Status.SIGNED or person.signed_at is None:
                    continue
                early = [
                    s
                    for s in signers
                    if s.routing_order < person.routing_order
                    and (s.signed_at is None or s.signed_at > person.signed_at)
                ]
                if early:
                    say.append(
                        f"{person.name} signed contract version {version.number} before "
                        f"{', '.join(s.name for s in early)}, who sign first"
                    )
        found += [Disagreement(version.deal_id, version.deal.title, words) for words in say]
    return found
