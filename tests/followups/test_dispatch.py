"""The dispatcher in-process: claim, send, mark sent; retries, failures and crash recovery.

The real worker process is exercised in test_worker.py; these tests pin the rules.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.test import override_settings
from django.utils import timezone

from deals import services as deal_services
from deals.models import DealEvent
from followups import services
from followups.models import Reminder, RepTask
from followups.tasks import dispatch_due_reminders

from .conftest import make_version, send_contract

pytestmark = pytest.mark.django_db


@pytest.fixture
def due(deal, signer, always_working):
    """A contract sent 40 days ago: all six reminders are due."""
    send_contract(make_version(deal, sent_at=timezone.now() - dt.timedelta(days=40)))
    return list(Reminder.objects.filter(deal=deal).order_by("sequence"))


def dispatch_all():
    token, ids = services.reminders_claim()
    return services.reminder_batch_send(ids=ids, token=token)


def test_a_due_email_goes_to_the_signer_with_the_deals_data(deal, due, rep):
    """The email is rendered from the template with the deal's data, replies go to the rep."""
    result = dispatch_all()
    assert len(result.sent) == 6
    emails = [m for m in mail.outbox if m.extra_headers["Message-ID"] == due[0].message_id]
    assert len(emails) == 1
    email = emails[0]
    assert email.to == ["ann@acme.example"]
    assert email.reply_to == [rep.email]
    assert email.subject == "Any questions on the Acme rollout agreement?"
    assert email.body.startswith("Hi Ann,")
    assert "15-minute call" in email.body
    due[0].refresh_from_db()
    assert due[0].status == Reminder.Status.SENT
    assert due[0].recipient == "ann@acme.example"
    assert due[0].claim_token is None


def test_every_sent_reminder_is_a_timeline_event(deal, due):
    dispatch_all()
    events = deal.events.filter(kind=DealEvent.Kind.REMINDER, data__reminder_id__isnull=False)
    assert events.count() == 6
    assert events.filter(reason__startswith="Follow-up #1 emailed to ann@acme.example").exists()


def test_a_call_step_becomes_a_task_for_the_rep(deal, due, rep):
    """The day-5 step is a call: no email, a task in the rep's day with the due date."""
    dispatch_all()
    task = RepTask.objects.get(reminder=due[1])
    assert task.owner == rep and task.kind == RepTask.Kind.CALL
    assert task.title == "Call Ann about the Acme rollout contract"
    assert task.due_at == due[1].due_at
    assert len(mail.outbox) == 5


def test_a_second_run_of_the_same_batch_sends_nothing(due):
    """Tasks are idempotent: the batch only touches rows still holding its claim token."""
    token, ids = services.reminders_claim()
    services.reminder_batch_send(ids=ids, token=token)
    again = services.reminder_batch_send(ids=ids, token=token)
    assert again.sent == [] and again.not_owned == len(ids)
    assert len(mail.outbox) == 5


def test_a_worker_killed_after_claiming_loses_nothing(due):
    """Claimed and then abandoned (the worker died): after the lease the rows are claimed
    again and sent once, with the Message-ID fixed when the reminder was made."""
    token, ids = services.reminders_claim()
    assert len(ids) == 6
    assert services.reminders_claim()[1] == []  # leased: nobody else takes them
    later = timezone.now() + dt.timedelta(seconds=601)
    token2, ids2 = services.reminders_claim(now=later)
    assert sorted(ids2) == sorted(ids)
    services.reminder_batch_send(ids=ids2, token=token2)
    stale = services.reminder_batch_send(ids=ids, token=token)  # the old batch, redelivered
    assert stale.sent == []
    assert len(mail.outbox) == 5
    assert {m.extra_headers["Message-ID"] for m in mail.outbox} == {
        r.message_id for r in due if r.channel == "email"
    }
    assert set(Reminder.objects.values_list("attempts", flat=True)) == {2}


@override_settings(EMAIL_BACKEND="tests.followups.mailboxes.BrokenBackend")
def test_a_provider_error_is_retried_with_backoff_then_fails(deal, due):
    """A mail-server error puts the reminder back with a growing pause; after the last
    attempt it is marked failed with its error, visible to admins, and not retried again."""
    first = dispatch_all()
    assert len(first.retried) == 5 and len(first.sent) == 1  # the call task needs no email
    reminder = Reminder.objects.get(pk=due[0].pk)
    assert reminder.status == Reminder.Status.SCHEDULED
    assert reminder.due_at > timezone.now() + dt.timedelta(seconds=50)
    assert "SMTP is down" in reminder.last_error
    for attempt in range(2, 6):
        token, ids = services.reminders_claim(now=timezone.now() + dt.timedelta(days=attempt))
        services.reminder_batch_send(ids=ids, token=token)
    reminder.refresh_from_db()
    assert reminder.status == Reminder.Status.FAILED
    assert reminder.attempts == 5
    assert services.reminders_claim(now=timezone.now() + dt.timedelta(days=30))[1] == []
    assert deal.events.filter(reason__contains="could not be sent: ConnectionRefusedError").exists()


def test_a_reminder_without_anyone_to_write_to_fails_at_once(deal, always_working, contact):
    """No buyer email: retrying cannot help, so it fails with a plain explanation."""
    contact.email = ""
    contact.save()
    send_contract(make_version(deal, sent_at=timezone.now() - dt.timedelta(days=3)))
    result = dispatch_all()
    reminder = Reminder.objects.get(deal=deal, sequence=1)
    assert result.failed == [reminder.pk]
    assert reminder.status == Reminder.Status.FAILED
    assert "add a stakeholder" in reminder.last_error


def test_outside_working_hours_the_email_waits(deal, signer, rep):
    """A reminder that falls due at night (a worker was down) is held until morning."""
    rep.time_zone = "UTC"
    rep.working_days = "0123456"
    now = timezone.now()
    # A working window that excludes the present moment in UTC.
    rep.workday_start = (now + dt.timedelta(hours=2)).time().replace(microsecond=0)
    rep.workday_end = (now + dt.timedelta(hours=3)).time().replace(microsecond=0)
    if rep.workday_start >= rep.workday_end:
        pytest.skip("window wraps midnight at this hour")
    rep.save()
    send_contract(make_version(deal, sent_at=now - dt.timedelta(days=3)))
    Reminder.objects.filter(deal=deal, sequence=1).update(due_at=now - dt.timedelta(minutes=1))
    result = dispatch_all()
    reminder = Reminder.objects.get(deal=deal, sequence=1)
    assert result.deferred == [reminder.pk]
    assert reminder.status == Reminder.Status.SCHEDULED
    assert reminder.due_at > now and reminder.attempts == 0
    assert mail.outbox == []


def test_a_reminder_of_a_deal_closed_meanwhile_is_not_sent(deal, due, rep):
    token, ids = services.reminders_claim()
    deal_services.deal_transition(
        deal=deal, transition="mark_lost", by=rep, loss_reason="timing", reason="Paused"
    )
    result = services.reminder_batch_send(ids=ids, token=token)
    assert result.sent == []
    assert mail.outbox == []


@override_settings(FOLLOWUPS_BATCH_SIZE=4)
def test_the_dispatcher_task_claims_in_batches(due, eager_celery):
    """One tick sends every due reminder, a batch (one send task) per BATCH_SIZE rows: the
    tick claims the first batch, whose task (run at once here) claims the rest."""
    claimed = dispatch_due_reminders()
    assert claimed == 4
    assert Reminder.objects.filter(status=Reminder.Status.SENT).count() == 6


def test_the_email_goes_to_the_contracts_signer(deal, signer, always_working, account, rep):
    """The contract names its signer: follow-ups address them, even if not a contact yet."""
    version = make_version(
        deal,
        sent_at=timezone.now() - dt.timedelta(days=3),
        signer_name="Sam Signer",
        signer_email="sam@acme.example",
    )
    send_contract(version)
    dispatch_all()
    assert mail.outbox[0].to == ["sam@acme.example"]
    assert mail.outbox[0].body.startswith("Hi Sam,")


def test_a_failed_send_retried_restarts_the_cancelled_cadence(deal, signer, rep):
    """A version withdrawn (send failed) and sent again gets its follow-ups planned afresh."""
    from .conftest import withdraw_contract

    version = make_version(deal)
    send_contract(version)
    withdraw_contract(version)
    assert not Reminder.objects.filter(deal=deal).open().exists()
    send_contract(version)
    assert Reminder.objects.filter(deal=deal).open().count() == 6


@override_settings(FOLLOWUPS_LEASE_SECONDS=0)
def test_a_batch_out_of_time_puts_the_rest_back_in_the_queue(due):
    """Past its time budget a batch stops; the rows it did not reach are due again at once,
    without counting an attempt."""
    token, ids = services.reminders_claim()
    result = services.reminder_batch_send(ids=ids, token=token)
    assert result.sent == []
    assert set(Reminder.objects.values_list("status", "attempts")) == {("scheduled", 0)}
    assert mail.outbox == []


@pytest.mark.django_db(transaction=True)
def test_a_second_dispatcher_skips_rows_locked_by_the_first(postgres, deal, signer, always_working):
    """SELECT … FOR UPDATE SKIP LOCKED: while one dispatcher holds rows, another claims the
    rest instead of waiting or taking the same ones."""
    import threading

    from django.db import connection, transaction

    send_contract(make_version(deal, sent_at=timezone.now() - dt.timedelta(days=40)))
    first_three = list(Reminder.objects.order_by("due_at", "pk").values_list("pk", flat=True)[:3])
    locked, release = threading.Event(), threading.Event()

    def hold_locks():
        try:
            with transaction.atomic():
                list(Reminder.objects.select_for_update().filter(pk__in=first_three))
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_locks)
    holder.start()
    try:
        assert locked.wait(10)
        _, ids = services.reminders_claim()
    finally:
        release.set()
        holder.join(10)
    assert len(ids) == 3 and not set(ids) & set(first_three)


def test_a_worker_killed_between_sending_and_recording_sends_nothing_twice(deal, due):
    """The worker died after an email went out (its sent_at committed) but before the
    reminder was recorded as sent: the next claim records it, with its timeline event and
    the time it really went out, and sends only the others."""
    token, ids = services.reminders_claim()
    first = next(r for r in due if r.channel == "email")
    went_out = timezone.now() - dt.timedelta(seconds=30)
    # What `_mark_emailed` leaves behind when the process is killed right after it.
    Reminder.objects.filter(pk=first.pk, claim_token=token).update(
        sent_at=went_out, recipient="ann@acme.example"
    )
    later = timezone.now() + dt.timedelta(seconds=601)  # the lease ran out
    token2, ids2 = services.reminders_claim(now=later)
    assert sorted(ids2) == sorted(ids)
    result = services.reminder_batch_send(ids=ids2, token=token2)
    assert sorted(result.sent) == sorted(ids)
    sent_ids = {m.extra_headers["Message-ID"] for m in mail.outbox}
    assert first.message_id not in sent_ids and len(mail.outbox) == 4
    first.refresh_from_db()
    assert (first.status, first.sent_at, first.claim_token) == ("sent", went_out, None)
    events = deal.events.filter(kind=DealEvent.Kind.REMINDER, data__reminder_id=first.pk)
    assert [e.reason for e in events] == [
        "Follow-up #1 emailed to ann@acme.example: “Any questions on the Acme rollout agreement?”"
    ]


def test_cancelling_leaves_an_email_that_already_went_out_to_be_recorded(deal, due, rep):
    """A deal lost between an email going out and its recording: the other reminders are
    cancelled, the emailed one is recorded as sent (it was), not as cancelled."""
    services.reminders_claim()
    first = next(r for r in due if r.channel == "email")
    Reminder.objects.filter(pk=first.pk).update(sent_at=timezone.now(), recipient="a@b.example")
    deal_services.deal_transition(deal=deal, transition="mark_lost", by=rep, loss_reason="price")
    statuses = dict(Reminder.objects.values_list("pk", "status"))
    assert statuses.pop(first.pk) == "sending"
    assert set(statuses.values()) == {"cancelled"}
    later = timezone.now() + dt.timedelta(seconds=601)
    token2, ids2 = services.reminders_claim(now=later)
    assert ids2 == [first.pk]
    assert services.reminder_batch_send(ids=ids2, token=token2).sent == [first.pk]
    assert mail.outbox == []


def test_each_sent_reminder_is_committed_in_a_handful_of_statements(
    deal, signer, always_working, make_deal, rep, contact
):
    """Sending is cheap enough to commit every reminder on its own: one more due email
    reminder costs the batch one statement (the autocommitted UPDATE of its sent_at before
    the next email goes out); marking the reminders sent with their timeline events is a
    handful of statements per group of FOLLOWUPS_RECORD_EVERY, and the deals' last
    activity one statement for the whole batch."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from deals.models import Deal

    def statements(n: int) -> int:
        deals = []
        for i in range(n):
            other = make_deal(title=f"Batch {n}-{i}")
            deal_services.stakeholder_add(deal=other, by=rep, contact=contact, role="signer")
            send_contract(make_version(other, sent_at=timezone.now() - dt.timedelta(days=3)))
            deals.append(other)
        token, ids = services.reminders_claim()
        captured_start = timezone.now()
        with CaptureQueriesContext(connection) as captured:
            result = services.reminder_batch_send(ids=ids, token=token)
        assert len(result.sent) == n  # the day-2 email of each deal
        assert all(
            d.last_activity_at >= captured_start
            for d in Deal.objects.filter(pk__in=[d.pk for d in deals])
        )
        return len(captured)

    five, ten = statements(5), statements(10)
    per_reminder = (ten - five) / 5
    assert per_reminder == int(per_reminder) and per_reminder <= 1


def test_a_killed_workers_claim_is_free_again_within_90_seconds():
    """The claim lease outlives a live batch task (its hard time limit, which Celery
    enforces) and, with one dispatcher tick, lets a killed worker's reminders go out again
    within 90 seconds."""
    from django.conf import settings

    from followups.tasks import send_reminder_batch

    assert send_reminder_batch.time_limit == settings.FOLLOWUPS_TASK_TIME_LIMIT
    assert send_reminder_batch.soft_time_limit < settings.FOLLOWUPS_TASK_TIME_LIMIT
    assert settings.FOLLOWUPS_LEASE_SECONDS > settings.FOLLOWUPS_TASK_TIME_LIMIT
    assert settings.FOLLOWUPS_LEASE_SECONDS + settings.FOLLOWUPS_DISPATCH_INTERVAL <= 90
    assert settings.FOLLOWUPS_COMMIT_EVERY == 1  # at most one email resent per killed worker


@override_settings(FOLLOWUPS_BATCH_SIZE=2, FOLLOWUPS_MAX_BATCHES_PER_TICK=1)
def test_a_full_batch_claims_the_next_one_without_waiting_for_a_tick(due, eager_celery):
    """The tick claims one batch; each full batch, once sent, claims the next: one tick
    clears the backlog, every reminder claimed once."""
    assert dispatch_due_reminders() == 2
    assert set(Reminder.objects.values_list("status", "attempts")) == {("sent", 1)}
    assert len(mail.outbox) == 5


@override_settings(FOLLOWUPS_BATCH_SIZE=4, FOLLOWUPS_MAX_BATCHES_PER_TICK=1)
def test_a_batch_that_is_not_full_ends_the_chain(due, eager_celery):
    """Four, then the last two: the short batch claims nothing more."""
    from unittest import mock

    with mock.patch.object(services, "reminders_claim", wraps=services.reminders_claim) as claim:
        assert dispatch_due_reminders() == 4
    assert claim.call_count == 2  # the tick's batch of 4, the chained batch of 2
    assert Reminder.objects.filter(status=Reminder.Status.SENT).count() == 6


def _lease_renewals(captured) -> int:
    return sum(
        1 for q in captured if q["sql"].startswith('UPDATE "followups_reminder" SET "lease_until"')
    )


def test_a_fresh_claim_is_sent_on_its_own_lease(due):
    """A batch that starts right after its claim costs no renewal statement."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    token, ids = services.reminders_claim()
    with CaptureQueriesContext(connection) as captured:
        result = services.reminder_batch_send(ids=ids, token=token)
    assert len(result.sent) == 6
    assert _lease_renewals(captured) == 0


def test_a_claim_near_the_end_of_its_lease_is_renewed_before_sending(due):
    """A batch that waited in the queue most of its lease renews it first (rows still
    ours only), then sends everything."""
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    waited = dt.timedelta(seconds=settings.FOLLOWUPS_LEASE_SECONDS - 1)
    token, ids = services.reminders_claim(now=timezone.now() - waited)
    with CaptureQueriesContext(connection) as captured:
        result = services.reminder_batch_send(ids=ids, token=token)
    assert _lease_renewals(captured) == 1
    assert len(result.sent) == 6 and len(mail.outbox) == 5


def test_an_expired_claim_taken_by_another_dispatcher_is_left_to_it(due):
    """The lease ran out before the batch started and a second dispatcher claimed the
    rows: the first batch sends nothing."""
    from django.conf import settings

    expired = dt.timedelta(seconds=settings.FOLLOWUPS_LEASE_SECONDS + 1)
    token, ids = services.reminders_claim(now=timezone.now() - expired)
    token2, ids2 = services.reminders_claim()
    assert sorted(ids2) == sorted(ids)
    result = services.reminder_batch_send(ids=ids, token=token)
    assert result.sent == [] and result.not_owned == 6 and mail.outbox == []
    assert len(services.reminder_batch_send(ids=ids2, token=token2).sent) == 6


@override_settings(FOLLOWUPS_BATCH_SIZE=2, FOLLOWUPS_MAX_BATCHES_PER_TICK=2)
def test_a_tick_only_tops_up_the_batches_in_flight(due):
    """Two batches allowed in flight, one claimed and not sent yet: the tick queues one
    more batch, and none once both are in flight."""
    from unittest import mock

    services.reminders_claim()
    assert services.reminder_claims_in_flight() == 1
    with mock.patch("followups.tasks.send_reminder_batch.delay") as delay:
        assert dispatch_due_reminders() == 2
        assert dispatch_due_reminders() == 0
    assert delay.call_count == 1
    assert services.reminder_claims_in_flight() == 2
