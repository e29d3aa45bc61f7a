"""Audit log reads: one deal's events, or every event in a date range, as export rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from django.shortcuts import get_object_or_404
from django.utils import timezone

from ..models import Deal, DealEvent

__all__ = [
    "AUDIT_COLUMNS",
    "audit_deal_for_export",
    "audit_event_rows",
    "audit_events_for_deal",
    "audit_events_in_range",
]

#: Columns of the audit export, in order (CSV header and JSON keys alike).
AUDIT_COLUMNS = [
    "id",
    "deal_id",
    "deal_title",
    "created_at",
    "actor",
    "kind",
    "from_state",
    "to_state",
    "transition",
    "reason",
    "data",
]


def audit_deal_for_export(user, pk) -> Deal:
    """The deal if `user` may read it, archived ones included (their history stays
    exportable); 404 otherwise, with no hint that it exists."""
    return get_object_or_404(Deal.objects.visible_to(user), pk=pk)


def _events():
    return DealEvent.objects.select_related("actor", "deal").order_by("created_at", "pk")


def audit_events_for_deal(deal: Deal):
    """The deal's events, oldest first."""
    return _events().filter(deal=deal)


def audit_events_in_range(start: dt.date, end: dt.date):
    """Every event from the start of `start` to the end of `end` (the server's time zone),
    oldest first: for admins."""
    tz = timezone.get_current_timezone()
    since = dt.datetime.combine(start, dt.time.min, tzinfo=tz)
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return _events().filter(created_at__gte=since, created_at__lt=until)


def audit_event_rows(events) -> Iterator[dict[str, Any]]:
    """One plain dict per event (streamed in chunks), keyed by AUDIT_COLUMNS."""
    for event in events.iterator(chunk_size=2000):
        yield {
            "id": event.pk,
            "deal_id": event.deal_id,
            "deal_title": event.deal.title,
            "created_at": event.created_at.isoformat(),
            "actor": event.actor.username if event.actor_id else "system",
            "kind": event.kind,
            "from_state": event.from_state,
            "to_state": event.to_state,
            "transition": event.transition,
            "reason": event.reason,
            "data": event.data,
        }
