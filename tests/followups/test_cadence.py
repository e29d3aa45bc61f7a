"""Cadences become reminder rows when a contract is sent, in the rep's working hours, and stop
when the deal closes or the contract changes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from deals import services as deal_services
from deals.models import DealEvent
from deals.services import DealError, NotPermitted
from followups import services
from followups.models import Cadence, CadenceStep, Reminder

from .conftest import make_version, send_contract, withdraw_contract

BERLIN = ZoneInfo("Europe/Berlin")
pytestmark = pytest.mark.django_db


def test_default_cadence_ships_with_friendly_steps():
    """The default cadence offers a call or a meeting: day 2, 5, 10, 17, then weekly twice."""
    cadence = Cadence.objects.get(team__isnull=True, is_active=True)
    steps = list(cadence.steps.all())
    assert [s.offset_days for s in steps] == [2, 5, 10, 17]
    assert {s.channel for s in steps} == {"email", "call"}
    assert (cadence.repeat_every_days, cadence.repeat_times) == (7, 2)
    emails = " ".join(s.body for s in steps if s.channel == "email").lower()
    assert "call" in emails and "meeting" in emails


@time_machine.travel(dt.datetime(2026, 3, 2, 10, 0, tzinfo=BERLIN), tick=False)  # a Monday
def test_sending_a_contract_expands_the_cadence_into_reminders(deal, signer, rep):
    """Each step and each weekly repeat becomes a scheduled reminder, in order, on the timeline."""
    version = make_version(deal, sent_at=timezone.now())
    send_contract(version, by=rep)
    reminders = list(Reminder.objects.filter(deal=deal).order_by("sequence"))
    assert [r.sequence for r in reminders] == [1, 2, 3, 4, 5, 6]
    assert [r.channel for r in reminders] == ["email", "call", "email", "email", "email", "email"]
    offsets = [(r.planned_at - version.sent_at).days for r in reminders]
    assert offsets == [2, 5, 10, 17, 24, 31]
    assert all(r.status == Reminder.Status.SCHEDULED for r in reminders)
    assert len({r.message_id for r in reminders}) == 6
    # Day 2 after Monday 10:00 is Wednesday 10:00: inside working hours, unchanged.
    assert reminders[0].due_at == dt.datetime(2026, 3, 4, 10, 0, tzinfo=BERLIN)
    event = deal.events.filter(kind=DealEvent.Kind.REMINDER).first()
    assert "6 follow-ups scheduled" in event.reason


def test_sending_the_same_version_twice_changes_nothing(deal, signer, rep):
    """The receiver is idempotent: a repeated signal does not double the cadence."""
    version = make_version(deal)
    send_contract(version, by=rep)
    send_contract(version, by=rep)
    assert Reminder.objects.filter(deal=deal).count() == 6


def test_a_teams_own_cadence_wins_over_the_default(deal, signer, rep, team):
    """A team with its own cadence gets its steps, not the default's."""
    own = Cadence.objects.create(name="Short", team=team, repeat_every_days=0)
    CadenceStep.objects.create(cadence=own, offset_days=1, channel="meeting", subject="Meet")
    send_contract(make_version(deal), by=rep)
    reminders = list(Reminder.objects.filter(deal=deal))
    assert [(r.channel, r.subject_template) for r in reminders] == [("meeting", "Meet")]


class TestWorkingHours:
    def test_friday_evening_moves_to_monday_morning(self, rep):
        """A time after hours on Friday moves to the start of the next working day (Monday)."""
        when = dt.datetime(2026, 3, 6, 19, 30, tzinfo=BERLIN)
        assert services.working_time_next(when=when, user=rep) == dt.datetime(
            2026, 3, 9, 9, 0, tzinfo=BERLIN
        )

    def test_early_morning_waits_for_the_workday_start(self, rep):
        """No 3 a.m. emails: 03:00 on a Tuesday becomes 09:00 that Tuesday."""
        when = dt.datetime(2026, 3, 3, 3, 0, tzinfo=BERLIN)
        assert services.working_time_next(when=when, user=rep) == dt.datetime(
            2026, 3, 3, 9, 0, tzinfo=BERLIN
        )

    def test_inside_working_hours_is_unchanged(self, rep):
        when = dt.datetime(2026, 3, 3, 14, 15, tzinfo=BERLIN)
        assert services.working_time_next(when=when, user=rep) == when

    def test_the_reps_own_time_zone_and_days_count(self, rep):
        """A New York rep working Sunday to Thursday: Friday 10:00 UTC moves to Sunday 08:00 NY."""
        rep.time_zone = "America/New_York"
        rep.working_days = "01236"
        rep.workday_start = dt.time(8, 0)
        rep.workday_end = dt.time(16, 0)
        when = dt.datetime(2026, 3, 6, 10, 0, tzinfo=dt.UTC)  # Friday
        got = services.working_time_next(when=when, user=rep)
        assert got == dt.datetime(2026, 3, 8, 8, 0, tzinfo=ZoneInfo("America/New_York"))

    @time_machine.travel(dt.datetime(2026, 3, 6, 16, 0, tzinfo=BERLIN), tick=False)  # Friday
    def test_reminders_of_a_contract_sent_on_friday_avoid_the_weekend(self, deal, signer, rep):
        """Day 2 after a Friday afternoon is Sunday: the email waits for Monday 09:00."""
        send_contract(make_version(deal, sent_at=timezone.now()), by=rep)
        first = Reminder.objects.get(deal=deal, sequence=1)
        assert first.planned_at == dt.datetime(2026, 3, 8, 16, 0, tzinfo=BERLIN)
        assert first.due_at == dt.datetime(2026, 3, 9, 9, 0, tzinfo=BERLIN)

    @time_machine.travel(dt.datetime(2026, 3, 6, 16, 0, tzinfo=BERLIN), tick=False)
    def test_due_times_stay_in_working_hours_for_every_reminder(self, deal, signer, rep):
        send_contract(make_version(deal, sent_at=timezone.now()), by=rep)
        for reminder in Reminder.objects.filter(deal=deal):
            local = reminder.due_at.astimezone(BERLIN)
            assert local.weekday() < 5
            assert dt.time(9, 0) <= local.time() < dt.time(17, 30)


class TestCancellation:
    def test_winning_the_deal_cancels_open_reminders(self, deal, sent_version, rep, manager):
        """Won (here by a manager's override) stops every follow-up still planned."""
        deal_services.deal_transition(
            deal=deal, transition="override_won", by=manager, reason="Signed on paper"
        )
        statuses = set(Reminder.objects.filter(deal=deal).values_list("status", flat=True))
        assert statuses == {Reminder.Status.CANCELLED}
        assert deal.events.filter(reason__contains="cancelled: the deal is won").exists()

    def test_losing_the_deal_cancels_open_reminders(self, deal, sent_version, rep):
        deal_services.deal_transition(
            deal=deal, transition="mark_lost", by=rep, loss_reason="timing", reason="Next year"
        )
        assert not Reminder.objects.filter(deal=deal).open().exists()
        assert deal.events.filter(reason__contains="cancelled: the deal is lost").exists()

    def test_sent_reminders_stay_sent_when_the_deal_closes(self, deal, sent_version, rep):
        """History is kept: only open reminders are cancelled."""
        Reminder.objects.filter(deal=deal, sequence=1).update(status=Reminder.Status.SENT)
        deal_services.deal_transition(
            deal=deal, transition="mark_lost", by=rep, loss_reason="price", reason="Too dear"
        )
        assert Reminder.objects.get(deal=deal, sequence=1).status == Reminder.Status.SENT

    def test_a_revision_starts_a_fresh_cadence(self, deal, sent_version, rep):
        """Sending v2 cancels v1's open reminders and plans v2's from its own send time."""
        v2 = make_version(deal, number=2, sent_at=timezone.now())
        send_contract(v2, by=rep)
        old = Reminder.objects.filter(contract_version=sent_version)
        assert set(old.values_list("status", flat=True)) == {Reminder.Status.CANCELLED}
        assert "v2 replaced" in old.first().closed_reason
        new = Reminder.objects.filter(contract_version=v2)
        assert new.count() == 6 and all(r.status == "scheduled" for r in new)
        assert new.order_by("sequence").first().planned_at == v2.sent_at + dt.timedelta(days=2)

    def test_voiding_the_contract_cancels_its_reminders(self, deal, sent_version):
        withdraw_contract(sent_version)
        assert not Reminder.objects.filter(deal=deal).open().exists()

    def test_no_cadence_starts_for_a_closed_deal(self, deal, signer, rep):
        deal_services.deal_transition(
            deal=deal, transition="mark_lost", by=rep, loss_reason="fit", reason="Wrong fit"
        )
        send_contract(make_version(deal), by=rep)
        assert not Reminder.objects.filter(deal=deal).exists()


class TestRepControls:
    def test_pause_then_resume_a_step(self, deal, sent_version, rep):
        """A paused step is not due; resumed, it is planned at the next working moment."""
        reminder = Reminder.objects.get(deal=deal, sequence=1)
        services.reminder_pause(reminder=reminder, by=rep)
        reminder.refresh_from_db()
        assert reminder.status == Reminder.Status.PAUSED
        _, ids = services.reminders_claim()
        assert reminder.pk not in ids
        Reminder.objects.filter(status="sending").update(status="scheduled")
        services.reminder_resume(reminder=reminder, by=rep)
        reminder.refresh_from_db()
        assert reminder.status == Reminder.Status.SCHEDULED
        assert reminder.due_at >= timezone.now() - dt.timedelta(seconds=1)
        assert services.is_working_time(when=reminder.due_at, user=rep)

    def test_skip_a_step(self, deal, sent_version, rep):
        reminder = Reminder.objects.get(deal=deal, sequence=2)
        services.reminder_skip(reminder=reminder, by=rep)
        reminder.refresh_from_db()
        assert reminder.status == Reminder.Status.SKIPPED
        assert deal.events.filter(reason="Follow-up #2 (call task for the rep) skipped.").exists()

    def test_snooze_moves_the_reminder_into_working_hours(self, deal, sent_version, rep):
        reminder = Reminder.objects.get(deal=deal, sequence=3)
        until = dt.datetime.now(BERLIN).replace(hour=23, minute=0) + dt.timedelta(days=3)
        services.reminder_snooze(reminder=reminder, by=rep, until=until)
        reminder.refresh_from_db()
        assert reminder.due_at > until
        assert services.is_working_time(when=reminder.due_at, user=rep)

    def test_snoozing_into_the_past_is_refused(self, deal, sent_version, rep):
        reminder = Reminder.objects.get(deal=deal, sequence=3)
        with pytest.raises(DealError, match="future"):
            services.reminder_snooze(
                reminder=reminder, by=rep, until=timezone.now() - dt.timedelta(hours=1)
            )

    def test_a_sent_reminder_cannot_be_paused(self, deal, sent_version, rep):
        reminder = Reminder.objects.get(deal=deal, sequence=1)
        Reminder.objects.filter(pk=reminder.pk).update(status=Reminder.Status.SENT)
        with pytest.raises(DealError, match="Only a scheduled"):
            services.reminder_pause(reminder=reminder, by=rep)

    def test_someone_elses_rep_cannot_touch_the_reminders(self, deal, sent_version, teammate):
        reminder = Reminder.objects.get(deal=deal, sequence=1)
        with pytest.raises(NotPermitted):
            services.reminder_skip(reminder=reminder, by=teammate)
        reminder.refresh_from_db()
        assert reminder.status == Reminder.Status.SCHEDULED

    @time_machine.travel(dt.datetime(2026, 3, 2, 10, 0, tzinfo=BERLIN), tick=False)
    def test_fast_forward_makes_reminders_due_now(self, deal, signer, rep):
        """The demo command's service pulls reminders earlier so the dispatcher sends them."""
        send_contract(make_version(deal, sent_at=timezone.now()), by=rep)
        assert services.reminders_claim()[1] == []
        moved = services.reminders_fast_forward(days=8)
        assert moved == 6
        _, ids = services.reminders_claim()
        assert set(Reminder.objects.filter(pk__in=ids).values_list("sequence", flat=True)) == {
            1,
            2,
        }


def test_the_fast_forward_command_refuses_a_bad_number_of_days(deal, signer, rep):
    """The demo command says what is wrong instead of moving anything."""
    from io import StringIO

    from django.core.management import CommandError, call_command

    send_contract(make_version(deal, sent_at=timezone.now()), by=rep)
    before = sorted(Reminder.objects.values_list("due_at", flat=True))
    with pytest.raises(CommandError, match="positive number of days"):
        call_command("followups_fast_forward", "--days", "0")
    assert sorted(Reminder.objects.values_list("due_at", flat=True)) == before
    out = StringIO()
    call_command("followups_fast_forward", "--days", "2", "--deal", str(deal.pk), stdout=out)
    assert "6 scheduled follow-up(s) moved 2 day(s) earlier" in out.getvalue()


def test_a_cadence_step_with_a_forbidden_tag_is_refused_on_save_in_the_admin(db):
    """Admins get a form error for tags the sandbox does not offer, not a failing send later."""
    from django.core.exceptions import ValidationError

    from followups.models import Cadence, CadenceStep

    step = CadenceStep(
        cadence=Cadence.objects.first(),
        offset_days=1,
        channel="email",
        subject="Hello",
        body="{% load static %}{% debug %}",
    )
    with pytest.raises(ValidationError, match="Template error"):
        step.clean()
