"""Bulk actions on the deal list and saved views of the deal list and the board.

Thin views: the services act on each deal (and record its result) and keep the views; the
selectors read. A job or a view of someone else's is a 404, like another team's deal.
"""

from __future__ import annotations

from urllib.parse import quote

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from .. import services
from ..csv_export import csv_streaming_response
from ..forms_workspace import BulkActionForm
from ..models import BulkJob, BulkJobItem, SavedView
from ..selectors import (
    bulk_job_counts,
    bulk_job_get_visible,
    deals_filtered,
    saved_view_get_visible,
    saved_view_url,
    saved_views_for,
)
from .imports import EXPORT_TEXT_COLUMNS, _export_rows

#: Results shown per page of a job.
JOB_ITEMS_PAGE_SIZE = 100


def _list_url(query: str) -> str:
    return reverse("deals:deal_list") + (f"?{query}" if query else "")


def _filters(query: str) -> QueryDict:
    return QueryDict(query or "", mutable=False)


@require_POST
@login_required
def deals_bulk(request: HttpRequest) -> HttpResponse:
    """The bulk bar: export the selection, or act on each deal (inline when few, else a job)."""
    form = BulkActionForm(request.POST, user=request.user)
    query = request.POST.get("query", "").lstrip("?")
    if request.POST.get("action") == BulkJob.Action.REASSIGN and not form.can_reassign:
        raise PermissionDenied(_("Only the team's manager or an admin can change a deal's owner."))
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(_list_url(query))
    data = form.cleaned_data
    filters = _filters(query) if data["all_matching"] else None
    if data["action"] == "export":
        deals = deals_filtered(request.user, filters if filters is not None else _filters(query))
        if filters is None:
            deals = deals.filter(pk__in=data["deal"])
        filename = f"deals-selected-{timezone.localdate():%Y-%m-%d}.csv"
        return csv_streaming_response(
            _export_rows(deals), filename=filename, bom=True, text_columns=EXPORT_TEXT_COLUMNS
        )
    params = {
        "new_owner": data["new_owner"].pk if data.get("new_owner") else None,
        "reason": data["reason"],
        "move_account": data.get("move_account", False),
        "transition": data["transition"],
        "loss_reason": data["loss_reason"],
    }
    try:
        job = services.bulk_job_create(
            by=request.user,
            action=data["action"],
            params=params,
            deal_ids=None if filters is not None else data["deal"],
            filters=None if filters is None else {k: filters.get(k) for k in filters},
        )
        job = services.bulk_job_start(job=job, by=request.user)
    except services.NotPermitted as error:
        raise PermissionDenied(error.message) from None
    except services.DealError as error:
        messages.error(request, error.message)
        return redirect(_list_url(query))
    url = job.get_absolute_url() + (f"?back={quote(query, safe='')}" if query else "")
    return redirect(url)


@require_GET
@login_required
def bulk_job(request: HttpRequest, pk: int) -> HttpResponse:
    """A bulk job: its progress while it runs (polled by htmx), then each deal's result."""
    job = bulk_job_get_visible(request.user, pk)
    counts = bulk_job_counts(job)
    only_refused = request.GET.get("show") == "refused"
    items = job.items.order_by("position")
    if only_refused:
        items = items.filter(outcome=BulkJobItem.Outcome.REFUSED)
    page = Paginator(items, JOB_ITEMS_PAGE_SIZE).get_page(request.GET.get("page"))
    back = request.GET.get("back", "")
    context = {
        "job": job,
        "counts": counts,
        "page": page,
        "only_refused": only_refused,
        "summary": services.bulk_job_summary(job) if job.status == BulkJob.Status.DONE else "",
        "stalled": services.bulk_job_stalled(job),
        "back_url": _list_url(back),
        "back": back,
        "move_label": (
            services._transition_label(job.params["transition"])
            if job.action == BulkJob.Action.TRANSITION
            else ""
        ),
    }
    template = "deals/_bulk_job_status.html" if request.htmx else "deals/bulk_job.html"
    return render(request, template, context)


@require_POST
@login_required
def bulk_job_resume(request: HttpRequest, pk: int) -> HttpResponse:
    job = bulk_job_get_visible(request.user, pk)
    try:
        services.bulk_job_resume(job=job, by=request.user)
    except services.DealError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("Resumed: the deals still waiting are being done now."))
    return redirect(job)


# --- saved views ------------------------------------------------------------------------------


def _page_url(page: str, query: str = "") -> str:
    name = "deals:board" if page == SavedView.Page.BOARD else "deals:deal_list"
    return reverse(name) + (f"?{query}" if query else "")


@require_POST
@login_required
def saved_view_create(request: HttpRequest) -> HttpResponse:
    """Save the page's current filters and sort under a name (private or for the team)."""
    page = request.POST.get("page", "")
    query = request.POST.get("query", "").lstrip("?")
    try:
        view = services.saved_view_create(
            by=request.user,
            page=page,
            name=request.POST.get("name", ""),
            params=_filters(query),
            shared=request.POST.get("shared") == "on",
        )
    except services.DealError as error:
        messages.error(request, error.message)
        return redirect(_page_url(page if page in SavedView.Page.values else "", query))
    messages.success(request, _("View “%(name)s” saved.") % {"name": view.name})
    return redirect(_saved_url(view))


def _saved_url(view: SavedView) -> str:
    return saved_view_url(view)


@require_GET
@login_required
def saved_views(request: HttpRequest) -> HttpResponse:
    """The user's views and the team's shared ones: rename, share, delete, team default."""
    views = saved_views_for(request.user)
    pages = [
        (label, [v for v in views if v.page == value]) for value, label in SavedView.Page.choices
    ]
    can_set_default = request.user.is_superuser or (
        request.user.is_manager and bool(request.user.team_id)
    )
    return render(
        request, "deals/saved_views.html", {"pages": pages, "can_set_default": can_set_default}
    )


@require_POST
@login_required
def saved_view_change(request: HttpRequest, pk: int) -> HttpResponse:
    """Rename, share or unshare, delete, or make (or stop being) the team's default."""
    view = saved_view_get_visible(request.user, pk)
    op = request.POST.get("op", "")
    try:
        if op == "rename":
            services.saved_view_update(
                view=view,
                by=request.user,
                name=request.POST.get("name", ""),
                shared=request.POST.get("shared") == "on",
            )
            messages.success(request, _("View “%(name)s” saved.") % {"name": view.name})
        elif op == "delete":
            name = view.name
            services.saved_view_delete(view=view, by=request.user)
            messages.success(request, _("View “%(name)s” deleted.") % {"name": name})
        elif op in ("default", "undefault"):
            services.saved_view_set_team_default(
                view=view, by=request.user, default=op == "default"
            )
            if op == "default":
                text = _("“%(name)s” now opens for the team when the page has no filters.")
            else:
                text = _("“%(name)s” is no longer the team's default.")
            messages.success(request, text % {"name": view.name})
        else:
            messages.error(request, _("Choose what to do with the view."))
    except services.DealError as error:
        messages.error(request, error.message)
    return redirect("deals:saved_views")


urlpatterns = [
    path("deals/bulk/", deals_bulk, name="deals_bulk"),
    path("deals/bulk/<int:pk>/", bulk_job, name="bulk_job"),
    path("deals/bulk/<int:pk>/resume/", bulk_job_resume, name="bulk_job_resume"),
    path("views/", saved_views, name="saved_views"),
    path("views/new/", saved_view_create, name="saved_view_create"),
    path("views/<int:pk>/", saved_view_change, name="saved_view_change"),
]
