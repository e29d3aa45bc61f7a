"""Reads of saved views (the deal list's and the board's menu) and of bulk jobs."""

from __future__ import annotations

from urllib.parse import urlencode

from django.db.models import Count, Q
from django.shortcuts import get_object_or_404
from django.urls import reverse

from ..models import BulkJob, BulkJobItem, SavedView

__all__ = [
    "bulk_job_counts",
    "bulk_job_get_visible",
    "saved_view_get_visible",
    "saved_view_url",
    "saved_views_for",
]

PAGE_URLS = {SavedView.Page.DEAL_LIST: "deals:deal_list", SavedView.Page.BOARD: "deals:board"}
#: The order of a view's parameters in its address (the database keeps no order).
PARAM_ORDER = ("q", "state", "owner", "team", "close", "sort")


def _visible_views(user):
    """The user's own views and the views their team shares."""
    if not user.is_authenticated:
        return SavedView.objects.none()
    seen = Q(owner_id=user.pk)
    if user.team_id:
        seen |= Q(team_id=user.team_id, shared=True)
    return SavedView.objects.filter(seen)


def saved_views_for(user, page: str | None = None) -> list[SavedView]:
    """The views `user` may open (own, and the team's shared ones), by name; one query.

    Each view gets `url` (its page with its filters) and `mine` (the user may rename or
    delete it). Only the filters are kept: applied, they go through the viewer's own
    visibility, so a shared view never shows another team's deals.
    """
    views = _visible_views(user).select_related("owner")
    if page is not None:
        views = views.filter(page=page)
    views = list(views.order_by("page", "name", "pk"))
    for view in views:
        view.url = saved_view_url(view)
        view.mine = view.owner_id == user.pk
    return views


def saved_view_get_visible(user, pk) -> SavedView:
    """A view `user` may open, or 404 (another team's or someone's private view)."""
    return get_object_or_404(_visible_views(user).select_related("team"), pk=pk)


def saved_view_url(view: SavedView) -> str:
    """The view's page with its filters and sort, naming the view (`view=<id>`)."""
    keys = sorted(view.params, key=lambda k: (PARAM_ORDER.index(k) if k in PARAM_ORDER else 99, k))
    query = urlencode([*((k, view.params[k]) for k in keys), ("view", view.pk)])
    return f"{reverse(PAGE_URLS[view.page])}?{query}"


def bulk_job_get_visible(user, pk) -> BulkJob:
    """A bulk job its starter (or an admin) may follow; 404 for anyone else."""
    jobs = BulkJob.objects.select_related("by")
    if not user.is_superuser:
        jobs = jobs.filter(by_id=user.pk)
    return get_object_or_404(jobs, pk=pk)


def bulk_job_counts(job: BulkJob) -> dict[str, int]:
    """How many of the job's deals are done, refused and waiting (one query)."""
    Outcome = BulkJobItem.Outcome
    counts = job.items.aggregate(
        done=Count("pk", filter=Q(outcome=Outcome.DONE)),
        refused=Count("pk", filter=Q(outcome=Outcome.REFUSED)),
        pending=Count("pk", filter=Q(outcome=Outcome.PENDING)),
    )
    counts["finished"] = counts["done"] + counts["refused"]
    return counts
