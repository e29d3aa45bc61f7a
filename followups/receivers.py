"""Signal receivers: other apps' events start and stop cadences. They only call services.

Both signals are sent inside the sender's transaction, so the reminders commit (or roll
back) together with the contract or state change.
"""

from __future__ import annotations

from . import services


def start_cadence(sender, *, version, by=None, **kwargs) -> None:
    services.reminders_start(version=version, by=by)


def cancel_for_version(sender, *, version, reason="", **kwargs) -> None:
    services.reminders_cancel_for_version(version=version, reason=reason)


def cancel_when_closed(sender, *, deal, by=None, **kwargs) -> None:
    services.on_deal_state_changed(deal=deal, by=by)


def close_send_tasks(sender, *, version, **kwargs) -> None:
    services.rep_tasks_close_sent(version=version)


def task_send_revision(sender, *, version, by=None, **kwargs) -> None:
    services.rep_task_send_revision(version=version, by=by)


def tasks_late_signature(sender, *, version, **kwargs) -> None:
    services.rep_tasks_late_signature(version=version)


def cancel_when_archived(sender, *, deal, by=None, **kwargs) -> None:
    services.on_deal_archived(deal=deal, by=by)


def move_to_new_owner(sender, *, deal, previous_owner, **kwargs) -> None:
    services.on_deal_reassigned(deal=deal, previous_owner=previous_owner)


def anymail_inbound(sender, *, event, esp_name: str = "", **kwargs) -> None:
    """An ESP forwarded a received message (django-anymail): the same door as SMTP."""
    from .inbound import InboundRefused, inbound_email_receive

    message = event.message
    envelope_to = (
        [message.envelope_recipient] if getattr(message, "envelope_recipient", None) else []
    )
    try:
        inbound_email_receive(
            raw=message.as_bytes(),
            source=f"anymail:{esp_name.lower()}"[:40],
            envelope_to=envelope_to,
        )
    except InboundRefused as exc:
        # Anymail answers the ESP 200 either way; a refused message is logged, not retried.
        import logging

        logging.getLogger(__name__).warning("Inbound message from %s refused: %s", esp_name, exc)


def anymail_tracking(sender, *, event, esp_name: str = "", **kwargs) -> None:
    """Bounces and spam complaints from an ESP's tracking webhook pause the follow-ups."""
    from anymail.signals import EventType

    from .inbound import email_bounce_record

    if event.event_type not in (EventType.BOUNCED, EventType.COMPLAINED):
        return
    metadata = event.metadata or {}
    try:
        deal_id = int(metadata.get("deal_id")) if metadata.get("deal_id") else None
    except (TypeError, ValueError):
        deal_id = None
    key = f"{esp_name}:{event.event_id or event.message_id}:{event.event_type}:{event.recipient}"
    email_bounce_record(
        address=event.recipient or "",
        reason=(event.description or event.mta_response or event.event_type)[:500],
        key=key,
        deal_id=deal_id,
    )
