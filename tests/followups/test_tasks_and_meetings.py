"""Rep tasks log the touch when completed; the contract review meeting sets the deadline and
sends an RFC 5545 invitation."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from deals import services as deal_services
from deals.models import DealEvent, Stakeholder
from deals.services import DealConflict, DealError, NotPermitted
from followups import ical, services
from followups.models import RepTask, ReviewMeeting

pytestmark = pytest.mark.django_db


@pytest.fixture
def call_task(deal, rep):
    return RepTask.objects.create(
        owner=rep, deal=deal, kind=RepTask.Kind.CALL, title="Call Ann", due_at=timezone.now()
    )


def test_completing_a_call_logs_the_touch_on_the_deal(deal, rep, call_task):
    services.rep_task_complete(task=call_task, by=rep, outcome="She signs on Friday")
    call_task.refresh_from_db()
    assert call_task.completed_at is not None and call_task.completed_by == rep
    event = deal.events.filter(kind=DealEvent.Kind.TASK).get()
    assert event.reason == "Call done: Call Ann. She signs on Friday"
    assert event.actor == rep


def test_completing_twice_logs_once(deal, rep, call_task):
    """A second "done" on the same task is told it is already done; the timeline has one."""
    services.rep_task_complete(task=call_task, by=rep)
    with pytest.raises(DealConflict, match="already done"):
        services.rep_task_complete(task=call_task, by=rep)
    assert deal.events.filter(kind=DealEvent.Kind.TASK).count() == 1


def test_another_teams_rep_cannot_complete_the_task(call_task, other_rep):
    with pytest.raises(NotPermitted):
        services.rep_task_complete(task=call_task, by=other_rep)


def test_open_tasks_are_cancelled_when_the_deal_is_lost(deal, rep, call_task):
    deal_services.deal_transition(
        deal=deal, transition="mark_lost", by=rep, loss_reason="price", reason="Budget cut"
    )
    call_task.refresh_from_db()
    assert call_task.cancelled_at is not None
    with pytest.raises(DealError, match="cancelled"):
        services.rep_task_complete(task=call_task, by=rep)


class TestReviewMeeting:
    @pytest.fixture
    def buyer(self, deal, rep, contact):
        deal_services.stakeholder_add(
            deal=deal, by=rep, contact=contact, role=Stakeholder.Role.DECISION_MAKER
        )
        return contact

    def schedule(self, deal, rep, buyer, **kwargs):
        kwargs.setdefault("starts_at", timezone.now() + dt.timedelta(days=3))
        return services.review_meeting_schedule(
            deal=deal, by=rep, attendees=[buyer], location="Video call", **kwargs
        )

    def test_the_buyer_gets_an_invitation_with_an_ics(
        self, deal, rep, buyer, eager_celery, django_capture_on_commit_callbacks
    ):
        """After commit the attendees get an email with a METHOD:REQUEST calendar file."""
        with django_capture_on_commit_callbacks(execute=True):
            meeting = self.schedule(deal, rep, buyer, agenda="Terms; start date, billing")
        assert len(mail.outbox) == 1
        message = mail.outbox[0]
        assert message.to == ["ann@acme.example"]
        assert message.reply_to == [rep.email]
        assert message.subject == "Invitation: contract review for Acme rollout"
        name, content, mimetype = message.attachments[0]
        assert name == "invite.ics" and mimetype.startswith("text/calendar")
        assert content.startswith("BEGIN:VCALENDAR\r\n") and content.endswith("END:VCALENDAR\r\n")
        assert "\n" not in content.replace("\r\n", "")
        assert f"UID:{meeting.uid}\r\n" in content
        assert f"DTSTART:{meeting.starts_at.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}" in content
        assert "METHOD:REQUEST" in content and "SEQUENCE:0" in content
        assert "mailto:ann@acme.example" in content
        assert "DESCRIPTION:" in content and "Terms\\; start date\\, billing" in content
        meeting.refresh_from_db()
        assert meeting.invitation_sent_sequence == 0

    def test_the_meeting_date_is_the_deals_deadline_and_a_task(self, deal, rep, buyer):
        meeting = self.schedule(deal, rep, buyer)
        deal.refresh_from_db()
        assert deal.review_meeting_at == meeting.starts_at
        task = RepTask.objects.get(meeting=meeting)
        assert task.kind == RepTask.Kind.MEETING and task.due_at == meeting.starts_at
        assert deal.events.filter(kind=DealEvent.Kind.MEETING).exists()

    def test_moving_the_meeting_raises_the_sequence(
        self, deal, rep, buyer, eager_celery, django_capture_on_commit_callbacks
    ):
        """Rescheduling updates the same meeting (same UID, SEQUENCE 1) and re-invites."""
        with django_capture_on_commit_callbacks(execute=True):
            first = self.schedule(deal, rep, buyer)
        with django_capture_on_commit_callbacks(execute=True):
            moved = self.schedule(
                deal, rep, buyer, starts_at=first.starts_at + dt.timedelta(days=1)
            )
        assert moved.pk == first.pk and moved.sequence == 1
        assert ReviewMeeting.objects.count() == 1
        assert len(mail.outbox) == 2
        assert mail.outbox[1].subject.startswith("Updated invitation")
        assert "SEQUENCE:1" in mail.outbox[1].attachments[0][1]

    def test_a_repeated_invitation_task_sends_once(self, deal, rep, buyer):
        meeting = self.schedule(deal, rep, buyer)
        assert services.review_meeting_invitation_send(meeting_id=meeting.pk, sequence=0)
        assert not services.review_meeting_invitation_send(meeting_id=meeting.pk, sequence=0)
        assert len(mail.outbox) == 1

    def test_a_meeting_in_the_past_is_refused(self, deal, rep, buyer):
        with pytest.raises(DealError, match="future"):
            self.schedule(deal, rep, buyer, starts_at=timezone.now() - dt.timedelta(hours=1))
        assert not ReviewMeeting.objects.exists()

    def test_attendees_come_from_the_buying_group(self, deal, rep, account):
        outsider = deal_services.contact_create(
            by=rep, account=account, first_name="Otto", last_name="Outside", email="o@x.example"
        )
        with pytest.raises(DealError, match="not in this deal's buying group"):
            self.schedule(deal, rep, outsider)
        deal.refresh_from_db()
        assert deal.review_meeting_at is None


def test_long_ical_lines_are_folded_at_75_octets():
    line = "DESCRIPTION:" + "ä" * 80
    folded = ical.fold(line)
    parts = folded.split("\r\n")
    assert all(len(p.encode()) <= 75 for p in parts)
    assert all(p.startswith(" ") for p in parts[1:])
    assert "".join(p[1:] if i else p for i, p in enumerate(parts)) == line
