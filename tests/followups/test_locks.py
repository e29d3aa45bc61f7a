"""What a rep does with a follow-up, from 20 connections at once on PostgreSQL: one action
wins, the others get a conflict in plain words, the timeline shows one line."""

from __future__ import annotations

import pytest
from django.utils import timezone

from deals.models import DealEvent
from followups import services
from followups.models import Reminder, RepTask
from tests.concurrency import one_winner, run_concurrently

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

#: action → (status before, the call, status after)
ACTIONS = {
    "pause": (Reminder.Status.SCHEDULED, services.reminder_pause, Reminder.Status.PAUSED),
    "resume": (Reminder.Status.PAUSED, services.reminder_resume, Reminder.Status.SCHEDULED),
    "skip": (Reminder.Status.SCHEDULED, services.reminder_skip, Reminder.Status.SKIPPED),
}


def _reminder(deal, status) -> Reminder:
    reminder = Reminder.objects.filter(deal=deal, status=Reminder.Status.SCHEDULED).first()
    Reminder.objects.filter(pk=reminder.pk).update(status=status)
    return reminder


def _lines(deal, reminder, word: str):
    return deal.events.filter(
        kind=DealEvent.Kind.REMINDER, data__reminder_id=reminder.pk, reason__contains=word
    )


@pytest.mark.parametrize("action", ACTIONS)
def test_twenty_reps_acting_on_one_follow_up(postgres, deal, rep, sent_version, action):
    """Pause, resume or skip: one wins; the others are told what the follow-up is now."""
    before, call, after = ACTIONS[action]
    reminder = _reminder(deal, before)
    outcomes = run_concurrently(
        lambda r: call(reminder=r, by=rep),
        load=lambda: Reminder.objects.select_related("deal").get(pk=reminder.pk),
    )
    _, errors = one_winner(outcomes)
    assert all(f"this one is {after.label.lower()}" in e.message for e in errors)
    assert Reminder.objects.get(pk=reminder.pk).status == after
    word = {"pause": "paused", "resume": "resumed", "skip": "skipped"}[action]
    assert _lines(deal, reminder, word).count() == 1


def test_twenty_admins_retrying_one_failed_follow_up(postgres, deal, admin_user, sent_version):
    """A failed follow-up is planned again once; the other retries are refused."""
    reminder = _reminder(deal, Reminder.Status.FAILED)
    outcomes = run_concurrently(
        lambda r: services.reminder_retry(reminder=r, by=admin_user),
        load=lambda: Reminder.objects.get(pk=reminder.pk),
    )
    _, errors = one_winner(outcomes)
    assert all("Only a failed follow-up can be retried" in e.message for e in errors)
    assert Reminder.objects.get(pk=reminder.pk).status == Reminder.Status.SCHEDULED
    assert _lines(deal, reminder, "retried").count() == 1


def test_twenty_clicks_on_one_task_done(postgres, deal, rep):
    """A call task is done once, with one timeline line; the other clicks say who did it."""
    task = RepTask.objects.create(
        owner=rep, deal=deal, kind=RepTask.Kind.CALL, title="Call Ann", due_at=timezone.now()
    )
    outcomes = run_concurrently(
        lambda t: services.rep_task_complete(task=t, by=rep, outcome="Signs Friday"),
        load=lambda: RepTask.objects.get(pk=task.pk),
    )
    _, errors = one_winner(outcomes)
    assert all("already done" in e.message and str(rep) in e.message for e in errors)
    assert deal.events.filter(kind=DealEvent.Kind.TASK, data__task_id=task.pk).count() == 1
