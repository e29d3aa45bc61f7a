"""Reads of the follow-up app used by the deal page, My day and the admin."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from deals.models import User

from .models import Reminder, RepTask, ReviewMeeting


def deal_reminders(deal) -> list[Reminder]:
    """The reminders of the deal's latest cadence (open ones first), with their tasks."""
    latest = (
        Reminder.objects.filter(deal=deal)
        .order_by("-contract_version__number")
        .values_list("contract_version_id", flat=True)
        .first()
    )
    if latest is None:
        return []
    return list(
        Reminder.objects.filter(deal=deal, contract_version_id=latest)
        .select_related("contract_version")
        .order_by("sequence")
    )


def deal_open_tasks(deal) -> list[RepTask]:
    return list(
        RepTask.objects.filter(deal=deal, completed_at__isnull=True, cancelled_at__isnull=True)
        .select_related("owner")
        .order_by("due_at")
    )


def deal_next_review_meeting(deal) -> ReviewMeeting | None:
    return (
        ReviewMeeting.objects.filter(
            deal=deal, cancelled_at__isnull=True, starts_at__gt=timezone.now()
        )
        .prefetch_related("attendees")
        .order_by("starts_at")
        .first()
    )


def rep_tasks_due(user: User, *, days_ahead: int = 0) -> list[RepTask]:
    """The user's open calls and meetings due by the end of today (+ `days_ahead`), overdue
    first; computed in the user's own time zone."""
    from .services import _rep_zone

    zone = _rep_zone(user)
    today = timezone.localtime(timezone.now(), zone).date()
    end = dt.datetime.combine(today + dt.timedelta(days=days_ahead + 1), dt.time(0), tzinfo=zone)
    return list(
        RepTask.objects.filter(
            owner=user, completed_at__isnull=True, cancelled_at__isnull=True, due_at__lt=end
        )
        .select_related("deal__account")
        .order_by("due_at", "pk")[:50]
    )


def rep_followups_today(user: User) -> list[Reminder]:
    """Follow-up emails going out today on the user's deals (so the rep is not surprised)."""
    from .services import _rep_zone

    zone = _rep_zone(user)
    today = timezone.localtime(timezone.now(), zone).date()
    end = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    return list(
        Reminder.objects.filter(
            deal__owner=user,
            channel="email",
            status__in=[Reminder.Status.SCHEDULED, Reminder.Status.SENDING],
            due_at__lt=end,
        )
        .select_related("deal")
        .order_by("due_at")[:20]
    )


def deal_bouncing_addresses(deal) -> list:
    """Buying-group addresses that bounced (one query): the panel asks the rep to fix them."""
    from django.db.models.functions import Lower

    from deals.models import Stakeholder

    from .models import BouncingAddress

    emails = Stakeholder.objects.filter(deal=deal).annotate(e=Lower("contact__email")).values("e")
    return list(BouncingAddress.objects.filter(email__in=emails).order_by("email"))


def recipient_personal_data(contact) -> list[dict]:
    """The follow-up emails addressed to the contact, for a GDPR export."""
    if not contact.email:
        return []
    reminders = Reminder.objects.filter(
        deal__account_id=contact.account_id, recipient__iexact=contact.email
    ).order_by("deal_id", "sequence")
    return [
        {
            "deal_id": r.deal_id,
            "sequence": r.sequence,
            "channel": r.channel,
            "status": r.status,
            "recipient": r.recipient,
            "due_at": r.due_at,
            "sent_at": r.sent_at,
        }
        for r in reminders
    ]
