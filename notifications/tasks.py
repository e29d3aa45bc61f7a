"""Celery tasks of the notifications app: thin, idempotent, retried on mail-server errors."""

from __future__ import annotations

from celery import shared_task

from . import services

RETRYABLE = (ConnectionError, TimeoutError, OSError)


@shared_task(
    name="notifications.send_email",
    acks_late=True,
    ignore_result=True,
    autoretry_for=RETRYABLE,
    retry_backoff=10,
    retry_backoff_max=600,
    max_retries=6,
)
def send_notification_email(notification_id: int) -> bool:
    return services.notification_email_send(notification_id=notification_id)


@shared_task(name="notifications.send_due_digests", acks_late=True, ignore_result=True)
def send_due_digests() -> int:
    return services.digests_send_due()


@shared_task(name="notifications.notify_stalled_deals", acks_late=True, ignore_result=True)
def notify_stalled_deals() -> int:
    return services.stalled_deals_notify()
