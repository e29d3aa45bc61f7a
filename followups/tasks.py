"""Celery tasks of the follow-up app: thin wrappers that take ids and call the services.

All run on the dispatch queue (settings.CELERY_TASK_ROUTES) with acks_late, so a message
whose worker dies is delivered again; the services make a second run harmless.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from . import services

logger = logging.getLogger(__name__)

#: Database hiccups and mail-server outages are worth retrying, with growing pauses.
RETRYABLE = (OperationalError, InterfaceError, ConnectionError, TimeoutError, OSError)


def _claim_and_enqueue(batches: int) -> int:
    """Claim up to `batches` batches of due reminders, one send task each; returns how
    many reminders were claimed."""
    claimed = 0
    for _ in range(batches):
        token, ids = services.reminders_claim()
        if not ids:
            break
        # The claim is committed; if this message never arrives, the lease expires and
        # the next tick claims the rows again.
        send_reminder_batch.delay(ids, str(token))
        claimed += len(ids)
        if len(ids) < settings.FOLLOWUPS_BATCH_SIZE:
            break
    return claimed


@shared_task(name="followups.dispatch_due_reminders", acks_late=True, ignore_result=True)
def dispatch_due_reminders() -> int:
    """Beat runs this every minute: top the batches in flight up to
    FOLLOWUPS_MAX_BATCHES_PER_TICK, one send task each. Each full batch claims the next
    when it is done (`send_reminder_batch`), so a backlog keeps the workers busy between
    ticks, and claimed rows do not pile up in the queue behind more than that."""
    in_flight = services.reminder_claims_in_flight()
    claimed = _claim_and_enqueue(settings.FOLLOWUPS_MAX_BATCHES_PER_TICK - in_flight)
    if claimed:
        logger.info("Follow-ups: claimed %s due reminders", claimed)
    return claimed


@shared_task(
    name="followups.send_reminder_batch",
    acks_late=True,
    ignore_result=True,
    autoretry_for=RETRYABLE,
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
    # The claim lease (FOLLOWUPS_LEASE_SECONDS) is derived from these limits.
    time_limit=settings.FOLLOWUPS_TASK_TIME_LIMIT,
    soft_time_limit=settings.FOLLOWUPS_TASK_SOFT_TIME_LIMIT,
)
def send_reminder_batch(reminder_ids: list[int], token: str) -> dict:
    result = services.reminder_batch_send(ids=reminder_ids, token=token)
    if len(reminder_ids) >= settings.FOLLOWUPS_BATCH_SIZE and not result.returned:
        # A full batch sent in time: more may be due. Claim the next one now rather
        # than at the next tick (a batch cut short by its time budget waits for it).
        _claim_and_enqueue(1)
    return {"sent": len(result.sent), "failed": len(result.failed), "retried": len(result.retried)}


@shared_task(
    name="followups.send_meeting_invitation",
    acks_late=True,
    ignore_result=True,
    autoretry_for=RETRYABLE,
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=8,
)
def send_meeting_invitation(meeting_id: int, sequence: int) -> bool:
    return services.review_meeting_invitation_send(meeting_id=meeting_id, sequence=sequence)


@shared_task(bind=True, name="followups.send_deal_email", acks_late=True, ignore_result=True)
def send_deal_email(self, email_id: int) -> bool:
    """A rep's email to the buying group; mail-server errors are retried, then recorded."""
    from .deal_email import deal_email_deliver, deal_email_failed

    try:
        return deal_email_deliver(email_id=email_id)
    except RETRYABLE as exc:
        if self.request.retries < 5:
            raise self.retry(countdown=min(30 * 2**self.request.retries, 900)) from None
        deal_email_failed(email_id=email_id, error=f"{type(exc).__name__}: {exc}")
        return False
