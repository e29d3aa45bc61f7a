"""What works, for coaching: win rates of decided deals by the rep's habits.

Decided deals are the ones won or lost in the period (as the dashboard's close rate). Each
breakdown gives, per value, the deals decided, the deals won, the win rate and its 95%
Wilson score interval; below `WHAT_WORKS_MIN_DEALS` decided deals a value is "too few deals
to say". One query per breakdown (four in all), whatever the number of deals.
"""

from __future__ import annotations

import datetime as dt
import math

from django.conf import settings
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, Least
from django.http import Http404
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from deals.models import Ask, ClosingTechnique, DealState
from followups.models import Channel as FollowUpChannel
from followups.models import Reminder, ReviewMeeting

from .selectors import DashboardFilters, dashboard_deals

__all__ = [
    "BREAKDOWNS",
    "what_works",
    "what_works_drilldown",
    "wilson_interval",
]

#: 1.96: the normal quantile for a two-sided 95% interval.
Z95 = 1.959963984540054

#: The breakdowns in the order shown, with the drill-down parameter of each.
BREAKDOWNS = [
    ("technique", gettext_lazy("Closing technique"), "technique"),
    ("asks", gettext_lazy("Asks before the answer"), "asks"),
    ("followup", gettext_lazy("Follow-up step before the decision"), "followup"),
    ("review", gettext_lazy("Review meeting held"), "review"),
]

ASKS_CAP = 4  # 4 and more asks share one row


def wilson_interval(won: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion won/n (None for n = 0)."""
    if n <= 0:
        return None
    p = won / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def _decided(filters: DashboardFilters):
    return dashboard_deals(filters).filter(
        state__in=[DealState.CLOSED_WON, DealState.CLOSED_LOST],
        closed_at__gte=filters.start_at,
        closed_at__lt=filters.end_at,
    )


def _asks_count():
    counted = (
        Ask.objects.filter(deal=OuterRef("pk"), asked_at__lte=OuterRef("closed_at"))
        .order_by()
        .values("deal")
        .annotate(n=Count("id"))
        .values("n")
    )
    return Least(
        Coalesce(Subquery(counted, output_field=IntegerField()), Value(0)), Value(ASKS_CAP)
    )


def _last_followup(field: str):
    """The `field` of the last follow-up sent before the deal was decided."""
    return Subquery(
        Reminder.objects.filter(
            deal=OuterRef("pk"),
            status=Reminder.Status.SENT,
            sent_at__lte=OuterRef("closed_at"),
        )
        .order_by("-sent_at", "-pk")
        .values(field)[:1]
    )


def _review_held():
    return Exists(
        ReviewMeeting.objects.filter(
            deal=OuterRef("pk"), cancelled_at__isnull=True, starts_at__lte=OuterRef("closed_at")
        )
    )


def _rows(decided, key_fields: list[str], **annotations):
    return list(
        decided.annotate(**annotations)
        .values(*key_fields)
        .annotate(n=Count("id"), won=Count("id", filter=Q(state=DealState.CLOSED_WON)))
        .order_by()
    )


def _cell(filters, key: str, value: str, label: str, n: int, won: int, minimum: int) -> dict:
    interval = wilson_interval(won, n)
    base = reverse("pipeline:dashboard_deals") + "?"
    return {
        "value": value,
        "label": label,
        "n": n,
        "won": won,
        "lost": n - won,
        "rate": won / n if n else None,
        "low": interval[0] if interval else None,
        "high": interval[1] if interval else None,
        "enough": n >= minimum,
        "rate_pct": 100 * won / n if n else None,
        "low_pct": 100 * interval[0] if interval else None,
        "high_pct": 100 * interval[1] if interval else None,
        "span_pct": 100 * (interval[1] - interval[0]) if interval else None,
        "href": base + urlencode(filters.params(closed="any", **{key: value})),
        "won_href": base + urlencode(filters.params(closed="won", **{key: value})),
    }


def what_works(filters: DashboardFilters) -> dict:
    """The four breakdowns for the filters' team, rep and period."""
    minimum = settings.WHAT_WORKS_MIN_DEALS
    decided = _decided(filters)
    result = {}

    labels = dict(ClosingTechnique.choices)
    rows = _rows(decided, ["closing_technique"])
    result["technique"] = sorted(
        (
            _cell(
                filters,
                "technique",
                r["closing_technique"] or "none",
                str(labels.get(r["closing_technique"], _("No technique recorded"))),
                r["n"],
                r["won"],
                minimum,
            )
            for r in rows
        ),
        key=lambda c: (-c["n"], c["label"]),
    )

    rows = _rows(decided, ["asks_n"], asks_n=_asks_count())
    cells = []
    for r in sorted(rows, key=lambda r: r["asks_n"]):
        n_asks = r["asks_n"]
        if n_asks == 0:
            label = _("No ask recorded")
        elif n_asks >= ASKS_CAP:
            label = _("%(n)s or more asks") % {"n": ASKS_CAP}
        elif n_asks == 1:
            label = _("1 ask")
        else:
            label = _("%(n)s asks") % {"n": n_asks}
        cells.append(_cell(filters, "asks", str(n_asks), label, r["n"], r["won"], minimum))
    result["asks"] = cells

    rows = _rows(
        decided,
        ["fu_sequence", "fu_channel"],
        fu_sequence=_last_followup("sequence"),
        fu_channel=_last_followup("channel"),
    )
    channels = dict(FollowUpChannel.choices)
    cells = []
    for r in sorted(rows, key=lambda r: (r["fu_sequence"] is None, r["fu_sequence"] or 0)):
        if r["fu_sequence"] is None:
            value, label = "none", _("No follow-up sent")
        else:
            value = f"{r['fu_sequence']}-{r['fu_channel']}"
            label = _("Follow-up %(n)s: %(channel)s") % {
                "n": r["fu_sequence"],
                "channel": channels.get(r["fu_channel"], r["fu_channel"]),
            }
        cells.append(_cell(filters, "followup", value, label, r["n"], r["won"], minimum))
    result["followup"] = cells

    rows = _rows(decided, ["held"], held=_review_held())
    result["review"] = [
        _cell(
            filters,
            "review",
            "held" if r["held"] else "none",
            _("Review meeting held") if r["held"] else _("No review meeting"),
            r["n"],
            r["won"],
            minimum,
        )
        for r in sorted(rows, key=lambda r: not r["held"])
    ]
    return {
        "breakdowns": [
            {"key": key, "title": title, "cells": result[key]} for key, title, _p in BREAKDOWNS
        ],
        "decided": sum(c["n"] for c in result["technique"]),
        "won": sum(c["won"] for c in result["technique"]),
        "minimum": minimum,
    }


def what_works_drilldown(deals, filters: DashboardFilters, params) -> tuple:
    """Narrow a drill-down by the what-works and quota parameters; (deals, descriptions)."""
    said = []
    technique = params.get("technique")
    if technique:
        if technique == "none":
            deals = deals.filter(closing_technique="")
            said.append(_("no closing technique recorded"))
        elif technique in ClosingTechnique.values:
            deals = deals.filter(closing_technique=technique)
            said.append(_("technique %(t)s") % {"t": ClosingTechnique(technique).label})
        else:
            raise Http404(_("No such closing technique."))
    asks = params.get("asks")
    if asks:
        if not asks.isdigit() or not 0 <= int(asks) <= ASKS_CAP:
            raise Http404(_("No such number of asks."))
        n = int(asks)
        deals = deals.annotate(asks_n=_asks_count()).filter(asks_n=n)
        said.append(
            _("%(n)s or more asks before the answer") % {"n": n}
            if n == ASKS_CAP
            else _("%(n)s ask(s) before the answer") % {"n": n}
        )
    followup = params.get("followup")
    if followup:
        deals = deals.annotate(
            fu_sequence=_last_followup("sequence"), fu_channel=_last_followup("channel")
        )
        if followup == "none":
            deals = deals.filter(fu_sequence__isnull=True)
            said.append(_("no follow-up sent before the decision"))
        else:
            sequence, _sep, channel = followup.partition("-")
            if not sequence.isdigit() or channel not in FollowUpChannel.values:
                raise Http404(_("No such follow-up step."))
            deals = deals.filter(fu_sequence=int(sequence), fu_channel=channel)
            said.append(
                _("last follow-up before the decision: %(n)s (%(channel)s)")
                % {"n": sequence, "channel": FollowUpChannel(channel).label}
            )
    review = params.get("review")
    if review:
        if review not in ("held", "none"):
            raise Http404(_("No such review meeting value."))
        held = _review_held()
        deals = deals.filter(held) if review == "held" else deals.filter(~held)
        said.append(_("review meeting held") if review == "held" else _("no review meeting"))
    close_by = params.get("close_by")
    if close_by:
        try:
            day = dt.date.fromisoformat(close_by)
        except ValueError:
            raise Http404(_("No such date.")) from None
        deals = deals.filter(expected_close_date__lte=day)
        said.append(_("expected to close by %(day)s") % {"day": day.isoformat()})
    return deals, said
