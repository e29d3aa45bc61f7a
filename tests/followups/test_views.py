"""The follow-up panel on the deal page and the tasks card on My day, through HTTP."""

from __future__ import annotations

import datetime as dt

import pytest
from django.template import Context, Template
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from deals import services as deal_services
from deals.models import DealEvent, Stakeholder
from followups.models import Reminder, RepTask, ReviewMeeting

pytestmark = pytest.mark.django_db


@pytest.fixture
def rep_client(client, rep):
    client.force_login(rep)
    return client


def render_tag(source: str, user, **context) -> str:
    request = RequestFactory().get("/")
    request.user = user
    return Template("{% load followups_tags %}" + source).render(
        Context({"request": request, "user": user, **context})
    )


def test_the_deal_panel_lists_the_cadence(deal, sent_version, rep):
    html = render_tag("{% followups_panel deal %}", rep, deal=deal)
    assert "Cadence for contract v1" in html
    assert html.count('class="fu-scheduled"') == 6
    assert "Schedule a review meeting" in html


def test_pausing_from_the_panel_returns_the_updated_panel(rep_client, deal, sent_version):
    reminder = Reminder.objects.get(deal=deal, sequence=1)
    url = reverse("followups:reminder_action", args=[reminder.pk, "pause"])
    response = rep_client.post(url, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert 'id="followups-panel"' in response.content.decode()
    reminder.refresh_from_db()
    assert reminder.status == Reminder.Status.PAUSED


def test_without_htmx_the_action_redirects_to_the_deal(rep_client, deal, sent_version):
    reminder = Reminder.objects.get(deal=deal, sequence=2)
    url = reverse("followups:reminder_action", args=[reminder.pk, "skip"])
    response = rep_client.post(url)
    assert response.status_code == 302 and response.url == deal.get_absolute_url()


def test_a_refused_action_shows_the_reason_in_the_panel(rep_client, deal, sent_version):
    reminder = Reminder.objects.get(deal=deal, sequence=1)
    Reminder.objects.filter(pk=reminder.pk).update(status=Reminder.Status.SENT)
    url = reverse("followups:reminder_action", args=[reminder.pk, "pause"])
    response = rep_client.post(url, HTTP_HX_REQUEST="true")
    assert "Only a scheduled follow-up can be paused" in response.content.decode()


def test_snooze_with_a_bad_value_is_refused(rep_client, deal, sent_version):
    reminder = Reminder.objects.get(deal=deal, sequence=1)
    before = reminder.due_at
    url = reverse("followups:reminder_action", args=[reminder.pk, "snooze"])
    response = rep_client.post(url, {"days": "999"}, HTTP_HX_REQUEST="true")
    assert "Choose how long" in response.content.decode()
    reminder.refresh_from_db()
    assert reminder.due_at == before


def test_a_reminder_of_an_invisible_deal_is_a_404(client, other_rep, deal, sent_version):
    client.force_login(other_rep)
    reminder = Reminder.objects.get(deal=deal, sequence=1)
    url = reverse("followups:reminder_action", args=[reminder.pk, "skip"])
    assert client.post(url).status_code == 404


def test_scheduling_the_review_meeting_from_the_panel(rep_client, deal, rep, contact):
    deal_services.stakeholder_add(deal=deal, by=rep, contact=contact, role=Stakeholder.Role.SIGNER)
    when = (timezone.now() + dt.timedelta(days=2)).astimezone(
        __import__("zoneinfo").ZoneInfo(rep.time_zone)
    )
    response = rep_client.post(
        reverse("followups:review_meeting", args=[deal.pk]),
        {
            "starts_at": when.strftime("%Y-%m-%dT%H:%M"),
            "duration_minutes": "45",
            "attendees": [contact.pk],
            "location": "Video",
            "agenda": "",
        },  # fmt: skip
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    meeting = ReviewMeeting.objects.get(deal=deal)
    assert meeting.starts_at == when.replace(second=0, microsecond=0)
    assert "invitation" in response.content.decode()


def test_the_meeting_form_without_attendees_says_what_is_missing(rep_client, deal):
    when = timezone.now() + dt.timedelta(days=2)
    response = rep_client.post(
        reverse("followups:review_meeting", args=[deal.pk]),
        {"starts_at": when.strftime("%Y-%m-%dT%H:%M"), "duration_minutes": "45"},
        HTTP_HX_REQUEST="true",
    )
    assert "Invite at least one person" in response.content.decode()
    assert not ReviewMeeting.objects.exists()


def test_my_day_lists_due_tasks_and_completes_them(rep_client, rep, deal):
    task = RepTask.objects.create(
        owner=rep, deal=deal, kind="call", title="Call Ann about the contract",
        due_at=timezone.now() - dt.timedelta(hours=1),
    )  # fmt: skip
    html = render_tag("{% my_day_tasks %}", rep)
    assert "Call Ann about the contract" in html and "Done" in html
    response = rep_client.post(
        reverse("followups:task_complete", args=[task.pk]),
        {"outcome": "Signing tomorrow"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert "No calls or meetings due today." in response.content.decode()
    assert deal.events.filter(kind=DealEvent.Kind.TASK, reason__contains="Signing tomorrow")
