"""Dashboard snapshots: the rendered figures of a dashboard, kept for a short while.

Also the coaching pages and the CSV of each dashboard figure.

The all-teams dashboard aggregates 100,000 deals, their asks, objections, stays and
contracts in some thirty statements; even with the running totals and covering indexes
that is ~0.5 s of SQL plus the rendering of a few hundred rows (issue 13). Managers open
the same dashboard many times in a few minutes (back from a drill-down, another tab), so
the rendered figures are kept in the cache for `DASHBOARD_CACHE_SECONDS` (Redis in
production, the process's memory in the embedded default), per scope, role, filters,
language and time zone: everyone who would see the same figures shares them.

What keeps them honest:
- the page says when its figures were computed, with "Refresh now" (`?fresh=1`);
- a user's own change shows at once: every unsafe request stamps the browser with the time
  (`closing_crm.replica.CHANGED_COOKIE`), and a snapshot older than that is recomputed;
- a snapshot lives at most `DASHBOARD_CACHE_SECONDS` (0 turns snapshots off);
- a cache that fails (Redis down) only costs the shortcut: the figures are computed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from django.utils.translation import get_language

from closing_crm.replica import CHANGED_COOKIE

logger = logging.getLogger(__name__)

#: Bump when the cached HTML's shape changes, so old snapshots are never shown.
SNAPSHOT_VERSION = 1


@dataclass(frozen=True)
class Snapshot:
    content: str  # the rendered figures (HTML, or the text of a CSV figure)
    at: dt.datetime  # when the figures were computed
    cached: bool  # served from the cache (not computed for this request)
    ttl: int  # seconds a snapshot is kept (0: never)


def _scope(user) -> list:
    """Who sees the same figures: everything (admins), a team (its manager, or its reps
    when the team shares deals; role kept apart, the pages differ by role), or one rep."""
    if user.is_superuser:
        return ["all"]
    role = "manager" if user.is_manager else "rep"
    if user.team_id and (user.is_manager or user.team.reps_see_team_deals):
        return ["team", user.team_id, role]
    return ["own", user.pk, role]


def snapshot_key(page: str, filters) -> str:
    """The cache key of a page's figures for these (resolved) dashboard filters."""
    parts = [
        SNAPSHOT_VERSION,
        page,
        _scope(filters.user),
        filters.team.pk if filters.team is not None else None,
        filters.rep.pk if filters.rep is not None else None,
        filters.period,
        filters.start.isoformat(),
        filters.end.isoformat(),
        filters.currency,
        get_language(),
        timezone.get_current_timezone_name(),
    ]
    digest = hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()
    return f"dashboard-snapshot:{digest}"


def _changed_at(request) -> float:
    """When this browser last changed something (0 if not recently)."""
    try:
        return float(request.COOKIES.get(CHANGED_COOKIE, 0))
    except ValueError:
        return 0.0


def dashboard_snapshot(request, page: str, filters, render: Callable[[], str]) -> Snapshot:
    """The page's figures (HTML or CSV text): from a fresh enough snapshot, or `render()`
    (then kept)."""
    ttl = settings.DASHBOARD_CACHE_SECONDS
    key = snapshot_key(page, filters)
    if ttl > 0 and request.GET.get("fresh") != "1":
        try:
            kept = cache.get(key)
        except Exception:  # noqa: BLE001 (a cache outage must not take the dashboard down)
            logger.warning("Dashboard snapshot cache unavailable", exc_info=True)
            kept = None
        if kept and kept["at"] > _changed_at(request):
            at = dt.datetime.fromtimestamp(kept["at"], tz=dt.UTC)
            return Snapshot(content=kept["content"], at=at, cached=True, ttl=ttl)
    now = time.time()
    content = render()
    if ttl > 0:
        try:
            cache.set(key, {"content": content, "at": now}, ttl)
        except Exception:  # noqa: BLE001
            logger.warning("Dashboard snapshot not kept", exc_info=True)
    return Snapshot(
        content=content, at=dt.datetime.fromtimestamp(now, tz=dt.UTC), cached=False, ttl=ttl
    )
