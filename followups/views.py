"""Thin views of the follow-up panel and My day tasks: forms in, services called, partial out."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_POST

from deals.models import Deal
from deals.services import DealError

from . import services
from .forms import ReviewMeetingForm, SnoozeForm
from .models import Reminder, RepTask
from .templatetags.followups_tags import deal_panel_context, my_day_context

app_name = "followups"

REMINDER_ACTIONS = {
    "pause": services.reminder_pause,
    "resume": services.reminder_resume,
    "skip": services.reminder_skip,
}


def _panel(request, deal: Deal, *, error: str = "", meeting_form=None, status: int = 200):
    context = deal_panel_context(request, deal, error=error, meeting_form=meeting_form)
    return render(request, "followups/_deal_panel.html", context, status=status)


def _done(request, deal: Deal, message: str):
    if request.htmx:
        return _panel(request, deal)
    messages.success(request, message)
    return redirect(deal.get_absolute_url())


def _failed(request, deal: Deal, error: str, meeting_form=None):
    if request.htmx:
        # 200 so htmx swaps the panel showing the error in place.
        return _panel(request, deal, error=error, meeting_form=meeting_form)
    messages.error(request, error)
    return redirect(deal.get_absolute_url())


def _reminder_for(request, pk: int) -> Reminder:
    visible = Deal.objects.visible_to(request.user)
    return get_object_or_404(Reminder.objects.select_related("deal"), pk=pk, deal__in=visible)


@require_POST
@login_required
def reminder_action(request, pk: int, action: str):
    reminder = _reminder_for(request, pk)
    deal = reminder.deal
    try:
        if action == "snooze":
            form = SnoozeForm(request.POST)
            if not form.is_valid():
                return _failed(request, deal, "Choose how long to snooze the follow-up.")
            until = timezone.now() + dt.timedelta(days=form.cleaned_data["days"])
            services.reminder_snooze(reminder=reminder, by=request.user, until=until)
        elif action in REMINDER_ACTIONS:
            REMINDER_ACTIONS[action](reminder=reminder, by=request.user)
        else:
            return HttpResponseBadRequest("Unknown follow-up action.")
    except DealError as exc:
        return _failed(request, deal, exc.message)
    return _done(request, deal, f"Follow-up #{reminder.sequence}: done ({action}).")


@require_POST
@login_required
def review_meeting_schedule(request, deal_pk: int):
    deal = get_object_or_404(Deal.objects.visible_to(request.user), pk=deal_pk)
    form = ReviewMeetingForm(request.POST, deal=deal, zone=services._rep_zone(request.user))
    if not form.is_valid():
        return _failed(request, deal, "Check the meeting details below.", meeting_form=form)
    data = form.cleaned_data
    try:
        meeting = services.review_meeting_schedule(
            deal=deal,
            by=request.user,
            starts_at=data["starts_at"],
            duration_minutes=data["duration_minutes"],
            attendees=list(data["attendees"]),
            location=data["location"],
            agenda=data["agenda"],
        )
    except DealError as exc:
        return _failed(request, deal, exc.message, meeting_form=form)
    deal.refresh_from_db()
    return _done(
        request, deal, f"Review meeting set; invitations go to {meeting.attendees.count()} people."
    )


@require_POST
@login_required
def task_complete(request, pk: int):
    visible = Deal.objects.visible_to(request.user)
    task = get_object_or_404(
        RepTask.objects.select_related("deal").filter(Q(owner=request.user) | Q(deal__in=visible)),
        pk=pk,
    )
    error = ""
    try:
        services.rep_task_complete(
            task=task, by=request.user, outcome=request.POST.get("outcome", "")
        )
    except DealError as exc:
        error = exc.message
    if request.POST.get("from") == "deal":
        return (
            _failed(request, task.deal, error) if error else _done(request, task.deal, "Task done.")
        )
    if request.htmx:
        context = my_day_context(request, error=error)
        return render(request, "followups/_my_day_tasks.html", context)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"Done: {task.title}. It is on the deal's timeline.")
    return redirect("home")


urlpatterns = [
    path("reminders/<int:pk>/<slug:action>/", reminder_action, name="reminder_action"),
    path("deals/<int:deal_pk>/review-meeting/", review_meeting_schedule, name="review_meeting"),
    path("tasks/<int:pk>/complete/", task_complete, name="task_complete"),
]
