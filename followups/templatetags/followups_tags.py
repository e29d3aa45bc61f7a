"""Template tags that put follow-ups and tasks on other apps' pages."""

from __future__ import annotations

from django import template
from django.utils import timezone

from deals.models import CLOSED_STATES, can_work_deal

from .. import selectors
from ..forms import SNOOZE_CHOICES, ReviewMeetingForm

register = template.Library()


def my_day_context(request, *, error: str = "") -> dict:
    user = request.user
    return {
        "tasks": selectors.rep_tasks_due(user) if user.is_authenticated else [],
        "followups_today": selectors.rep_followups_today(user) if user.is_authenticated else [],
        "now": timezone.now(),
        "user": user,
        "request": request,
        "error": error,
    }


def deal_panel_context(request, deal, *, error: str = "", meeting_form=None) -> dict:
    from ..services import _rep_zone

    user = request.user
    zone = _rep_zone(user)
    meeting = selectors.deal_next_review_meeting(deal)
    if meeting_form is None:
        initial = {}
        if meeting is not None:
            initial = {
                "starts_at": timezone.localtime(meeting.starts_at, zone).strftime("%Y-%m-%dT%H:%M"),
                "duration_minutes": meeting.duration_minutes,
                "attendees": list(meeting.attendees.all()),
                "location": meeting.location,
                "agenda": meeting.agenda,
            }
        meeting_form = ReviewMeetingForm(initial=initial, deal=deal, zone=zone)
    reminders = selectors.deal_reminders(deal)
    counts: dict[str, int] = {}
    for reminder in reminders:
        label = reminder.get_status_display().lower()
        counts[label] = counts.get(label, 0) + 1
    return {
        "deal": deal,
        "user": user,
        "request": request,
        "reminders": reminders,
        "reminder_counts": ", ".join(f"{n} {label}" for label, n in counts.items()),
        "tasks": selectors.deal_open_tasks(deal),
        "meeting": meeting,
        "meeting_form": meeting_form,
        "snooze_choices": SNOOZE_CHOICES,
        "can_work": can_work_deal(deal, user),
        "is_closed": deal.state in CLOSED_STATES,
        "zone": zone,
        "error": error,
        "bouncing": selectors.deal_bouncing_addresses(deal),
    }


@register.inclusion_tag("followups/_my_day_tasks.html", takes_context=True)
def my_day_tasks(context):
    """The signed-in rep's due follow-up tasks, for the My day page."""
    return {**my_day_context(context["request"]), "csrf_token": context.get("csrf_token")}


@register.inclusion_tag("followups/_deal_panel.html", takes_context=True)
def followups_panel(context, deal):
    """Reminders, tasks and the review meeting of one deal, for the deal page."""
    return {**deal_panel_context(context["request"], deal), "csrf_token": context.get("csrf_token")}
