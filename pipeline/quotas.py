"""Quota attainment for the dashboard and My day: won against quota, pacing, gap, coverage.

A quota is a rep's target for one month or quarter in one currency (`deals.Quota`). For the
day asked about, the figures cover the month and the quarter containing it:

- won: the amount of the rep's deals won in the period, in the quota's currency;
- expected by now: quota × elapsed fraction, the fraction being the days of the period
  elapsed up to and including today over its days (0 before it starts, 1 after it ends);
- pace: won − expected by now (negative: behind pace); gap: quota − won, never below 0;
- commit and best case: the rep's open deals in the quota's currency in those forecast
  categories (`FORECAST_CATEGORIES`) expected to close by the period's last day (overdue
  included; deals with no expected close date are left out), i.e. what could close the gap.

Team rows add up their reps' rows per period and currency. Currencies are never added
together. Two queries whatever the number of reps, quotas or deals.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db.models import Q, Sum, Value
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from deals.models import DealState, Quota, QuotaPeriod, quota_period_end, quota_period_label

from .selectors import FORECAST_CATEGORIES, MONEY, ZERO, DashboardFilters, dashboard_deals

__all__ = ["quota_attainment", "quota_periods_on"]

CENT = Decimal("0.01")


def quota_periods_on(day: dt.date) -> list[tuple[str, dt.date, dt.date]]:
    """(kind, first day, last day) of the month and the quarter containing `day`."""
    month = day.replace(day=1)
    quarter = dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return [
        (QuotaPeriod.MONTH, month, quota_period_end(QuotaPeriod.MONTH, month)),
        (QuotaPeriod.QUARTER, quarter, quota_period_end(QuotaPeriod.QUARTER, quarter)),
    ]


def elapsed_fraction(start: dt.date, end: dt.date, today: dt.date) -> Decimal:
    """Days of [start, end] elapsed up to and including `today`, over the period's days."""
    total = (end - start).days + 1
    elapsed = min(max((today - start).days + 1, 0), total)
    return Decimal(elapsed) / Decimal(total)


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _states(key: str) -> list[str]:
    return next(states for k, _label, states in FORECAST_CATEGORIES if k == key)


def _visible_quotas(filters: DashboardFilters):
    user = filters.user
    quotas = Quota.objects.all()
    if not user.is_superuser:
        if user.is_manager and user.team_id:
            quotas = quotas.filter(team_id=user.team_id)
        else:
            quotas = quotas.filter(rep=user)
    if filters.team is not None:
        quotas = quotas.filter(team=filters.team)
    if filters.rep is not None:
        quotas = quotas.filter(rep=filters.rep)
    return quotas


def _drill(filters: DashboardFilters, start: dt.date, end: dt.date, **extra) -> str:
    params = {"period": "custom", "start": start.isoformat(), "end": end.isoformat()}
    if filters.team is not None and filters.user.is_superuser:
        params["team"] = filters.team.pk
    params.update(extra)
    return reverse("pipeline:dashboard_deals") + "?" + urlencode(params)


def _figures(row: dict, today: dt.date) -> dict:
    quota, won = row["quota"], row["won"]
    fraction = elapsed_fraction(row["start"], row["end"], today)
    expected = (quota * fraction).quantize(CENT)
    gap = max(quota - won, ZERO)
    commit, best = row["commit"], row["best_case"]
    if gap == 0:
        cover = "met"
    elif commit >= gap:
        cover = "commit"
    elif commit + best >= gap:
        cover = "best_case"
    else:
        cover = "short"
    return {
        **row,
        "elapsed": fraction,
        "expected": expected,
        "attainment": (won / quota) if quota else None,
        "attainment_pct": float(won / quota * 100) if quota else None,
        "bar_pct": min(float(won / quota * 100), 100.0) if quota else 0.0,
        "elapsed_pct": float(fraction * 100),
        "pace": won - expected,
        "pace_abs": abs(won - expected),
        # Pacing is an estimate: shown in whole units (the figures above keep the cents).
        "expected_shown": expected.quantize(Decimal("1")),
        "pace_shown": abs(won - expected).quantize(Decimal("1")),
        "gap": gap,
        "cover": cover,
        "short_by": max(gap - commit - best, ZERO),
    }


def quota_attainment(filters: DashboardFilters, *, today: dt.date | None = None) -> dict:
    """Rep and team rows for the month and quarter containing `filters.end` (today for the
    named periods). Returns {"periods": [...], "reps": [...], "teams": [...]}."""
    today = today or timezone.localdate()
    on = filters.end
    periods = quota_periods_on(on)
    period_q = Q(pk__in=[])
    for kind, start, _end in periods:
        period_q |= Q(period_kind=kind, period_start=start)
    quotas = list(
        _visible_quotas(filters)
        .filter(period_q)
        .select_related("rep", "team")
        .order_by("team__name", "rep__first_name", "rep__username", "period_kind", "currency")
    )
    if not quotas:
        return {"periods": periods, "reps": [], "teams": []}

    won_q = Q(state=DealState.CLOSED_WON)
    commit_q = Q(state__in=_states("commit"))
    best_q = Q(state__in=_states("best_case"))
    annotations = {}
    for kind, start, end in periods:
        closed_in = Q(
            closed_at__gte=_day_start(start), closed_at__lt=_day_start(end) + dt.timedelta(days=1)
        )
        close_by = Q(expected_close_date__lte=end)
        annotations[f"won_{kind}"] = Coalesce(
            Sum("amount", filter=won_q & closed_in), Value(ZERO), output_field=MONEY
        )
        annotations[f"commit_{kind}"] = Coalesce(
            Sum("amount", filter=commit_q & close_by), Value(ZERO), output_field=MONEY
        )
        annotations[f"best_{kind}"] = Coalesce(
            Sum("amount", filter=best_q & close_by), Value(ZERO), output_field=MONEY
        )
    sums = {
        (r["owner"], r["team"], r["currency"]): r
        for r in dashboard_deals(filters)
        .filter(owner__in={q.rep_id for q in quotas})
        .values("owner", "team", "currency")
        .annotate(**annotations)
        .order_by()
    }
    ends = {(kind, start): end for kind, start, end in periods}
    reps, teams = [], {}
    for quota in quotas:
        end = ends[(quota.period_kind, quota.period_start)]
        found = sums.get((quota.rep_id, quota.team_id, quota.currency), {})
        kind = quota.period_kind
        row = {
            "quota_id": quota.pk,
            "rep": quota.rep,
            "team": quota.team,
            "kind": kind,
            "start": quota.period_start,
            "end": end,
            "period": quota_period_label(kind, quota.period_start),
            "currency": quota.currency,
            "quota": quota.amount,
            "won": Decimal(found.get(f"won_{kind}", ZERO)),
            "commit": Decimal(found.get(f"commit_{kind}", ZERO)),
            "best_case": Decimal(found.get(f"best_{kind}", ZERO)),
        }
        common = {"rep": quota.rep_id, "currency": quota.currency, "currency_only": 1}
        row["won_href"] = _drill(filters, quota.period_start, end, closed="won", **common)
        row["commit_href"] = _drill(
            filters, quota.period_start, end, category="commit", close_by=end.isoformat(), **common
        )
        row["best_href"] = _drill(
            filters,
            quota.period_start,
            end,
            category="best_case",
            close_by=end.isoformat(),
            **common,
        )
        reps.append(_figures(row, today))
        key = (quota.team_id, kind, quota.period_start, quota.currency)
        total = teams.setdefault(
            key,
            {
                "team": quota.team,
                "kind": kind,
                "start": quota.period_start,
                "end": end,
                "period": row["period"],
                "currency": quota.currency,
                "reps": 0,
                "quota": ZERO,
                "won": ZERO,
                "commit": ZERO,
                "best_case": ZERO,
            },
        )
        total["reps"] += 1
        for name in ("quota", "won", "commit", "best_case"):
            total[name] += row[name]
    order = {QuotaPeriod.QUARTER: 0, QuotaPeriod.MONTH: 1}
    team_rows = [
        _figures(t, today)
        for t in sorted(
            teams.values(), key=lambda t: (t["team"].name, order[t["kind"]], t["currency"])
        )
    ]
    reps.sort(
        key=lambda r: (r["team"].name, order[r["kind"]], str(r["rep"]).lower(), r["currency"])
    )
    return {"periods": periods, "reps": reps, "teams": team_rows}
