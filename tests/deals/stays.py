"""The stays a deal's audit log implies, for checking the stays table against it."""

from __future__ import annotations

from deals.models import DealEvent, DealState, DealStay


def stays_from_events(deal_ids) -> dict[int, list[tuple]]:
    """Per deal: (state, entered_at, left_at, entered_by, left_by, seconds in the state so
    far when the stay ended) read from the event log."""
    found: dict[int, list[tuple]] = {}
    spent: dict[tuple[int, str], float] = {}
    events = DealEvent.objects.filter(
        deal_id__in=deal_ids, kind__in=[DealEvent.Kind.CREATED, DealEvent.Kind.TRANSITION]
    ).order_by("deal_id", "created_at", "id")
    for event in events:
        stays = found.setdefault(event.deal_id, [])
        if stays:
            state, entered, _left, entered_by, _left_by, _secs = stays[-1]
            key = (event.deal_id, state)
            spent[key] = spent.get(key, 0.0) + (event.created_at - entered).total_seconds()
            total = round(spent[key], 3)
            stays[-1] = (state, entered, event.created_at, entered_by, event.actor_id, total)
        state = DealState.INTENT_SPOTTED if event.kind == DealEvent.Kind.CREATED else event.to_state
        stays.append((state, event.created_at, None, event.actor_id, None, None))
    return found


def stays_from_table(deal_ids) -> dict[int, list[tuple]]:
    """Per deal: the same tuples, read from the stays table."""
    found: dict[int, list[tuple]] = {}
    for stay in DealStay.objects.filter(deal_id__in=deal_ids).order_by(
        "deal_id", "entered_at", "id"
    ):
        found.setdefault(stay.deal_id, []).append(
            (
                stay.state,
                stay.entered_at,
                stay.left_at,
                stay.entered_by_id,
                stay.left_by_id,
                None if stay.state_seconds is None else round(stay.state_seconds, 3),
            )
        )
    return found
