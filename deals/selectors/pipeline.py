"""Pipeline figures shared by the board, dashboards, CSV exports and the API."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Count, Sum, Value
from django.db.models.functions import Coalesce

from ..models import DealState, StageSetting

__all__ = ["pipeline_by_state", "stage_probabilities"]


def stage_probabilities() -> dict[str, int]:
    return dict(StageSetting.objects.values_list("state", "probability"))


def pipeline_by_state(deals, states=None) -> list[dict]:
    """Per state and currency: count, amount and weighted amount (amount × probability).

    One query for the figures plus one for the probabilities. Rows are ordered by
    state (the process order) then currency.
    """
    states = list(states or DealState.values)
    probabilities = stage_probabilities()
    rows = (
        deals.filter(state__in=states)
        .values("state", "currency")
        .annotate(count=Count("id"), amount=Coalesce(Sum("amount"), Value(Decimal("0"))))
        .order_by()
    )
    order = {s: i for i, s in enumerate(states)}
    result = []
    for row in rows:
        probability = Decimal(probabilities.get(row["state"], 0)) / 100
        result.append(
            {
                **row,
                "label": DealState(row["state"]).label,
                "probability": probabilities.get(row["state"], 0),
                "weighted": (row["amount"] * probability).quantize(Decimal("0.01")),
            }
        )
    return sorted(result, key=lambda r: (order[r["state"]], r["currency"]))


