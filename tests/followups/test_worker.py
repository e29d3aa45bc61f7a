"""Real `celery worker` processes on Redis and PostgreSQL send due reminders end to end,
survive SIGKILL mid-batch, and share the work without sending anything twice.

Workers run the embedded beat with a half-second tick on a queue of their own; the email
goes to a file per Message-ID in a temporary folder (what the buyer's mailbox would hold),
and every send attempt is logged beside it.
"""

from __future__ import annotations

import datetime as dt
import email
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from django.utils import timezone

from deals import services as deal_services
from deals.models import DealEvent, Stakeholder
from followups.models import Reminder, RepTask

from .conftest import make_version, send_contract
from .workers import Worker, purge

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def due_deals(rep, account, contact, always_working):
    """Builds `n` deals whose contracts went out 40 days ago: six due reminders each
    (five emails, one call)."""

    def _make(n: int) -> list:
        deals = []
        for i in range(n):
            deal = deal_services.deal_create(by=rep, account=account, title=f"Rollout {i}")
            deal_services.stakeholder_add(
                deal=deal, by=rep, contact=contact, role=Stakeholder.Role.SIGNER
            )
            send_contract(make_version(deal, sent_at=timezone.now() - dt.timedelta(days=40)))
            deals.append(deal)
        return deals

    return _make


@pytest.fixture
def mailbox(tmp_path) -> Path:
    folder = tmp_path / "mail"
    folder.mkdir()
    return folder


@pytest.fixture
def queue(redis_url):
    name = f"test-dispatch-{uuid.uuid4().hex[:10]}"
    yield name
    purge(redis_url, name)


def start(tmp_path, redis_url, queue, mailbox, name, backend="CountingFileBackend", **extra):
    env = {
        "EMAIL_BACKEND": f"tests.followups.mailboxes.{backend}",
        "EMAIL_FILE_PATH": str(mailbox),
        **extra,
    }
    return Worker(tmp_path, redis_url=redis_url, queue=queue, name=name, env=env).start()


def wait_for(condition, workers, timeout: float = 40.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        for worker in workers:
            if not worker.alive():
                pytest.fail(f"worker {worker.log_path.name} died:\n{worker.log()}")
        time.sleep(0.1)
    logs = "\n".join(w.log() for w in workers)
    pytest.fail(f"timed out waiting for {what}; status: {status_counts()}\n{logs}")


def status_counts() -> dict:
    return dict(Counter(Reminder.objects.values_list("status", flat=True)))


def delivered(mailbox: Path) -> list[email.message.Message]:
    return [email.message_from_bytes(p.read_bytes()) for p in sorted(mailbox.glob("*.eml"))]


def send_attempts(mailbox: Path) -> Counter:
    log = mailbox / "sends.log"
    return Counter(log.read_text().split()) if log.exists() else Counter()


def all_sent() -> bool:
    return Reminder.objects.exclude(status=Reminder.Status.SENT).count() == 0


def test_a_real_worker_sends_due_reminders_end_to_end(
    postgres, redis_url, tmp_path, queue, mailbox, due_deals, rep
):
    """Beat ticks, the worker claims and sends: emails in the mailbox, reminders sent, calls
    on the rep's day, and each one an event on its deal's timeline."""
    deals = due_deals(3)
    worker = start(tmp_path, redis_url, queue, mailbox, "e2e")
    try:
        wait_for(all_sent, [worker], what="all reminders sent")
    finally:
        worker.kill()
    messages = delivered(mailbox)
    assert len(messages) == 15
    by_id = {m["Message-ID"]: m for m in messages}
    for reminder in Reminder.objects.filter(channel="email"):
        message = by_id[reminder.message_id]
        assert message["To"] == "ann@acme.example"
        assert message["Reply-To"] == rep.email
        assert reminder.deal.title in message["Subject"]
    assert RepTask.objects.filter(owner=rep, kind="call").count() == 3
    for deal in deals:
        events = deal.events.filter(kind=DealEvent.Kind.REMINDER, data__reminder_id__isnull=False)
        assert events.count() == 6
    assert max(send_attempts(mailbox).values()) == 1


def test_a_worker_killed_mid_batch_loses_nothing_and_sends_nothing_twice(
    postgres, redis_url, tmp_path, queue, mailbox, due_deals
):
    """SIGKILL while a batch is being sent; after a restart every due reminder is sent, and
    every buyer has each follow-up exactly once (each sent reminder is committed at once, so
    at most the one email being sent when the worker died is attempted again, with the
    same Message-ID)."""
    due_deals(8)  # 48 reminders, 40 emails
    extra = {
        "FOLLOWUPS_BATCH_SIZE": "10",
        "FOLLOWUPS_LEASE_SECONDS": "3",
    }
    first = start(tmp_path, redis_url, queue, mailbox, "doomed", "SlowFileBackend", **extra)
    try:
        # The first batch holds eight emails (40 ms each): killed after the third, the
        # worker dies in the middle of it, not between two batches.
        wait_for(
            lambda: len(send_attempts(mailbox)) >= 3, [first], what="the first emails to go out"
        )
    finally:
        first.kill()
    sent_before = Reminder.objects.filter(status=Reminder.Status.SENT).count()
    assert sent_before < 48, "the worker finished before it could be killed"
    assert Reminder.objects.filter(status=Reminder.Status.SENDING).exists()

    second = start(tmp_path, redis_url, queue, mailbox, "restarted", "SlowFileBackend", **extra)
    try:
        wait_for(all_sent, [second], what="every reminder sent after the restart")
    finally:
        second.kill()
    messages = delivered(mailbox)
    assert len(messages) == 40
    emails = set(Reminder.objects.filter(channel="email").values_list("message_id", flat=True))
    assert {m["Message-ID"] for m in messages} == emails
    attempts = send_attempts(mailbox)
    assert set(attempts) == emails
    assert sum(attempts.values()) - 40 <= 1, attempts.most_common(5)  # one killed worker
    assert Reminder.objects.filter(attempts__gte=2).exists()  # reclaimed after the lease
    assert RepTask.objects.count() == 8


def test_two_dispatchers_at_once_send_each_reminder_once(
    postgres, redis_url, tmp_path, queue, mailbox, due_deals
):
    """Two workers, each with its own beat, claim with SKIP LOCKED: no reminder is sent
    twice and none is left behind."""
    due_deals(10)  # 60 reminders, 50 emails
    extra = {"FOLLOWUPS_BATCH_SIZE": "3", "FOLLOWUPS_DISPATCH_INTERVAL": "0.2"}
    workers = [
        start(tmp_path, redis_url, queue, mailbox, f"twin{i}", "SlowFileBackend", **extra)
        for i in (1, 2)
    ]
    try:
        wait_for(all_sent, workers, what="all reminders sent by two workers")
    finally:
        for worker in workers:
            worker.kill()
    attempts = send_attempts(mailbox)
    assert len(attempts) == 50
    assert max(attempts.values()) == 1
    assert len(delivered(mailbox)) == 50
    assert set(Reminder.objects.values_list("attempts", flat=True)) == {1}
    assert RepTask.objects.count() == 10
    events = DealEvent.objects.filter(kind=DealEvent.Kind.REMINDER, data__reminder_id__isnull=False)
    assert events.count() == 60
