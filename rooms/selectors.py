"""Reads of the close plan and the room, shared by the deal page, the room, My day and the
managers' pages."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from contracts.models import ContractVersion
from deals.models import OPEN_STATES, Deal, DealState

from .models import DealNeed, Phase, PlanOutcome, PlanStep, RoomFile, RoomLink, RoomQuestion


def plan_steps(deal: Deal) -> list[PlanStep]:
    return list(
        PlanStep.objects.filter(deal=deal).select_related(
            "owner_user", "owner_contact", "done_by_contact"
        )
    )


def deal_room_panel(deal: Deal) -> dict:
    """Everything the deal page's plan & room panel shows."""
    today = timezone.localdate()
    steps = plan_steps(deal)
    return {
        "close_steps": [s for s in steps if s.phase == Phase.CLOSE],
        "onboarding_steps": [s for s in steps if s.phase == Phase.ONBOARDING],
        "slipped": [s for s in steps if s.is_slipped(today)],
        "links": list(RoomLink.objects.filter(deal=deal).select_related("contact")[:20]),
        "questions": list(
            RoomQuestion.objects.filter(deal=deal)
            .select_related("link__contact", "answered_by", "objection")
            .order_by("-asked_at")[:20]
        ),
        "files": list(
            RoomFile.objects.filter(deal=deal).select_related("uploaded_by_link__contact")[:20]
        ),
        "outcomes": list(PlanOutcome.objects.filter(deal=deal).select_related("confirmed_by")),
        "needs": list(DealNeed.objects.filter(deal=deal).select_related("follow_on")),
        "today": today,
    }


def room_contract(deal: Deal) -> ContractVersion | None:
    """The contract the buyer may read: the newest version out for signature or signed."""
    from contracts.models import OUT_STATUSES

    return (
        ContractVersion.objects.filter(
            deal=deal, status__in=[*OUT_STATUSES, ContractVersion.Status.COMPLETED]
        )
        .order_by("-number")
        .first()
    )


def room_page(link: RoomLink) -> dict:
    """What one buyer sees: the plan (no internal notes), their deal's contract, questions,
    files and, after the win, onboarding and the outcomes to confirm."""
    from contracts.selectors import signing_link_for

    deal = link.deal
    today = timezone.localdate()
    steps = plan_steps(deal)
    version = room_contract(deal)
    sign_url = None
    if version is not None and link.contact.email:
        sign_url = signing_link_for(version=version, email=link.contact.email)
    won = deal.state == DealState.CLOSED_WON
    return {
        "deal": deal,
        "contact": link.contact,
        "won": won,
        "today": today,
        "close_steps": [s for s in steps if s.phase == Phase.CLOSE],
        "onboarding_steps": [s for s in steps if s.phase == Phase.ONBOARDING] if won else [],
        "version": version,
        "sign_url": sign_url,
        "signed": bool(version and version.status == ContractVersion.Status.COMPLETED),
        "questions": list(
            RoomQuestion.objects.filter(deal=deal).select_related("link__contact", "answered_by")
        ),
        "files": list(RoomFile.objects.filter(deal=deal, uploaded_by_link__isnull=True)),
        "my_uploads": list(RoomFile.objects.filter(deal=deal, uploaded_by_link=link)),
        "outcomes": list(PlanOutcome.objects.filter(deal=deal)) if won else [],
    }


def _slipping(today) -> Q:
    """Open steps past their date that still matter: any step of an open deal, and the
    onboarding steps of a won one."""
    live = Q(deal__state__in=OPEN_STATES) | Q(
        deal__state=DealState.CLOSED_WON, phase=Phase.ONBOARDING
    )
    return live & Q(status=PlanStep.Status.OPEN, due_date__lt=today, deal__archived_at__isnull=True)


def slipped_steps_for(user, *, limit: int = 20) -> list[PlanStep]:
    """Open plan steps past their date on the user's open deals (My day)."""
    today = timezone.localdate()
    return list(
        PlanStep.objects.filter(_slipping(today), deal__owner=user)
        .select_related("deal", "owner_user", "owner_contact")
        .order_by("due_date", "pk")[:limit]
    )


# --- managers: coaching page and dashboard ---------------------------------------


def plan_slippage(deals, *, limit: int = 10) -> list[dict]:
    """Deals whose plan slips: open steps past their date, most slipped first."""
    today = timezone.localdate()
    rows = (
        PlanStep.objects.filter(_slipping(today), deal__in=deals)
        .values(
            "deal_id",
            "deal__title",
            "deal__owner__username",
            "deal__owner__first_name",
            "deal__owner__last_name",
        )
        .annotate(slipped=Count("pk"), oldest=Max("due_date"))
        .order_by("-slipped", "deal_id")[:limit]
    )
    return [
        {
            "deal_id": r["deal_id"],
            "title": r["deal__title"],
            # Shown like the owner everywhere else (User.__str__: full name, else username).
            "owner": " ".join(
                n for n in (r["deal__owner__first_name"], r["deal__owner__last_name"]) if n
            )
            or r["deal__owner__username"],
            "slipped": r["slipped"],
        }
        for r in rows
    ]


def buyer_engagement(deals, *, limit: int = 10) -> list[dict]:
    """Per deal with a room: visits, people who came, last visit (most recent first)."""
    rows = (
        RoomLink.objects.filter(deal__in=deals)
        .values("deal_id", "deal__title")
        .annotate(
            total_visits=Sum("visits"),
            people=Count("contact", distinct=True, filter=Q(visits__gt=0)),
            last_visit=Max("last_visit_at"),
        )
        .order_by("-last_visit", "deal_id")[:limit]
    )
    return [
        {
            "deal_id": r["deal_id"],
            "title": r["deal__title"],
            "visits": r["total_visits"] or 0,
            "people": r["people"],
            "last_visit": r["last_visit"],
        }
        for r in rows
    ]


def _rate(won: int, closed: int) -> int | None:
    return round(100 * won / closed) if closed else None


def plan_win_rates(deals, *, start: dt.datetime, end: dt.datetime) -> dict:
    """Win rate of deals closed in [start, end) with a close plan and without one."""
    closed = deals.filter(
        state__in=[DealState.CLOSED_WON, DealState.CLOSED_LOST],
        closed_at__gte=start,
        closed_at__lt=end,
    ).annotate(n_steps=Count("plan_steps"))
    with_plan = closed.filter(n_steps__gt=0)
    without = closed.filter(n_steps=0)
    counts = {}
    for key, qs in (("with_plan", with_plan), ("without_plan", without)):
        won = qs.filter(state=DealState.CLOSED_WON).count()
        total = qs.count()
        counts[key] = {"won": won, "closed": total, "rate": _rate(won, total)}
    return counts
