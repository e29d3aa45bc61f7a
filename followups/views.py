"""Thin views of the follow-up panel and My day tasks: forms in, services called, partial out."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods, require_POST

from deals.models import Deal, can_work_deal
from deals.services import DealError

from . import services
from .deal_email import deal_email_recipients, deal_email_send
from .forms import DealEmailForm, ReviewMeetingForm, SnoozeForm
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
        messages.success(
            request,
            gettext("Done: %(title)s. It is on the deal's timeline.") % {"title": task.title},
        )
    return redirect("home")


@require_http_methods(["GET", "POST"])
@login_required
def deal_email_compose(request, deal_pk: int):
    """Write to the buying group from the deal: sent after commit, logged, threaded."""
    deal = get_object_or_404(
        Deal.objects.visible_to(request.user).select_related("account"), pk=deal_pk
    )
    if not can_work_deal(deal, request.user):
        raise PermissionDenied(can_work_deal.denied_message)
    recipients = deal_email_recipients(deal)
    initial = {"contact": recipients[0].pk} if recipients else {}
    if request.GET.get("to"):
        initial["contact"] = request.GET["to"]
    form = DealEmailForm(request.POST or None, recipients=recipients, initial=initial)
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            deal_email_send(
                deal=deal,
                by=request.user,
                contact=form.cleaned_data["contact"],
                subject=form.cleaned_data["subject"],
                body=form.cleaned_data["body"],
            )
        except DealError as exc:
            error = exc.message
        else:
            messages.success(
                request,
                gettext("Email to %(contact)s is on its way (see the timeline).")
                % {"contact": form.cleaned_data["contact"]},
            )
            return redirect(deal.get_absolute_url())
    history = deal.emails.select_related("contact").order_by("-created_at", "-pk")[:20]
    return render(
        request,
        "followups/deal_email.html",
        {"deal": deal, "form": form, "error": error, "recipients": recipients, "history": history},
        status=400 if request.method == "POST" else 200,
    )


urlpatterns = [
    path("deals/<int:deal_pk>/email/", deal_email_compose, name="deal_email"),
    path("reminders/<int:pk>/<slug:action>/", reminder_action, name="reminder_action"),
    path("deals/<int:deal_pk>/review-meeting/", review_meeting_schedule, name="review_meeting"),
    path("tasks/<int:pk>/complete/", task_complete, name="task_complete"),
]
