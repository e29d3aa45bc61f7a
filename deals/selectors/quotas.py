"""Reads for the quotas page: who may be given a quota, the quotas of a period, the history."""

from __future__ import annotations

import datetime as dt

from ..models import Quota, QuotaChange, QuotaPeriod, Team, User, quota_period_key

__all__ = [
    "quota_period_choices",
    "quota_reps",
    "quota_teams_for",
    "quotas_of_period",
    "quota_history",
]


def quota_teams_for(user: User) -> list[Team]:
    """Teams whose quotas `user` may set: all for admins, their own for managers."""
    if user.is_superuser:
        return list(Team.objects.order_by("name"))
    if user.is_manager and user.team_id:
        return [user.team]
    return []


def quota_reps(team: Team) -> list[User]:
    return list(
        User.objects.filter(team=team, is_active=True).order_by(
            "first_name", "last_name", "username"
        )
    )


def quota_period_choices(today: dt.date) -> list[tuple[str, str]]:
    """Periods offered in the form: last quarter to four quarters ahead, and the months of
    the current and next quarter (any other period can be typed in a CSV file)."""
    from ..models import quota_period_label

    first = dt.date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    quarters, months = [], []
    for step in range(-1, 5):
        index = first.year * 4 + (first.month - 1) // 3 + step
        start = dt.date(index // 4, 3 * (index % 4) + 1, 1)
        quarters.append(start)
    for step in range(0, 6):
        index = first.year * 12 + first.month - 1 + step
        months.append(dt.date(index // 12, index % 12 + 1, 1))
    return [
        (quota_period_key(QuotaPeriod.QUARTER, d), quota_period_label(QuotaPeriod.QUARTER, d))
        for d in quarters
    ] + [
        (quota_period_key(QuotaPeriod.MONTH, d), quota_period_label(QuotaPeriod.MONTH, d))
        for d in months
    ]


def quotas_of_period(team: Team, period_kind: str, period_start: dt.date):
    return (
        Quota.objects.filter(team=team, period_kind=period_kind, period_start=period_start)
        .select_related("rep", "set_by")
        .order_by("rep__first_name", "rep__username", "currency")
    )


def quota_history(team: Team, limit: int = 50):
    return (
        QuotaChange.objects.filter(team=team)
        .select_related("quota__rep", "actor")
        .order_by("-created_at", "-pk")[:limit]
    )
