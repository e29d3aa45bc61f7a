"""The rep's workspace: My day, the board, the deal list, search, and deal/account/contact forms.

Thin views: selectors read, services write, forms validate. Anything a user cannot see is a
404 (no hint that it exists); something they can see but not change is a 403.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from .. import services
from ..forms_workspace import (
    AccountForm,
    BoardFilterForm,
    BulkActionForm,
    ContactForm,
    DealFilterForm,
    DealForm,
)
from ..models import OPEN_STATES, DealState, SavedView, Team, can_work_deal
from ..pagination import DeferredJoinPaginator
from ..presenters import DEAL_LIST_ROW_FIELDS, deal_list_rows
from ..selectors import (
    accounts_visible,
    board_columns,
    board_totals,
    contacts_visible,
    deal_get_visible,
    deals_filtered,
    deals_visible,
    my_day,
    saved_views_for,
    search_everything,
    state_graph_edges,
)

DEAL_LIST_PAGE_SIZE = 25
#: Sortable columns of the deal list: (sort key, heading, CSS class).
DEAL_LIST_COLUMNS = [
    ("title", gettext_lazy("Deal"), ""),
    ("account", gettext_lazy("Account"), ""),
    ("state", gettext_lazy("State"), ""),
    ("amount", gettext_lazy("Amount"), "num"),
    ("close", gettext_lazy("Expected close"), ""),
    ("activity", gettext_lazy("Last activity"), ""),
]


def _is_editor(account, user) -> bool:
    """Mirror of the services' rule, to show or hide edit buttons."""
    return (
        user.is_superuser
        or user.pk == account.owner_id
        or (user.is_manager and user.team_id is not None and user.team_id == account.team_id)
    )


# --- pages ----------------------------------------------------------------------


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    """My day: what needs the user's attention now, most urgent first."""
    only_mine = request.GET.get("mine") == "1"
    day = my_day(request.user, only_mine=only_mine)
    can_scope = request.user.is_manager or request.user.is_superuser
    return render(request, "deals/home.html", {"day": day, "can_scope": can_scope})


@require_GET
@login_required
def board(request: HttpRequest) -> HttpResponse:
    """The pipeline board: one column per open state, with totals."""
    user = request.user
    views = _views_menu(request, SavedView.Page.BOARD)
    if views["open_default"]:
        return redirect(views["open_default"])
    teams = list(Team.objects.all()) if user.is_superuser else []
    form = BoardFilterForm(request.GET or None, user=user, teams=teams)
    params = {key: request.GET.get(key, "") for key in ("owner", "team", "close")}
    if not user.is_superuser:
        params.pop("team")
    deals = deals_filtered(user, params)
    columns = board_columns(deals, totals=board_totals(user, params))
    filtered = any(params.values())
    # Drag and drop between columns: which transition joins two open states (one at most).
    edges: dict[str, dict[str, str]] = {}
    for source, target, name in state_graph_edges():
        if source in OPEN_STATES and target in OPEN_STATES:
            edges.setdefault(source, {})[target] = name
    return render(
        request,
        "deals/board.html",
        {
            "form": form,
            "columns": columns,
            "filtered": filtered,
            "query": request.GET.urlencode(),
            "today": timezone.localdate(),
            "edges": edges,
            "views": views,
        },
    )


@require_GET
@login_required
def board_moves(request: HttpRequest, pk: int) -> HttpResponse:
    """The "Move to…" menu of one card (htmx partial): the moves this user may offer now."""
    deal = deal_get_visible(request.user, pk)
    moves = [
        {
            "name": move.name,
            "label": move.label,
            "target_label": DealState(move.target).label,
            "needs_reason": move.needs_reason,
            "blockers": move.blockers,
            "made_by": move.made_by,
            "how": move.how,
            "step": move.step,
            "anchor": move.anchor,
        }
        for move in services.deal_transitions_for(deal, request.user)
    ]
    return render(
        request,
        "deals/_board_moves.html",
        {"deal": deal, "moves": moves, "can_work": can_work_deal(deal, request.user)},
    )


@require_GET
@login_required
def deal_list(request: HttpRequest) -> HttpResponse:
    """Every deal the user can see: filter, sort, page through, act on a selection."""
    views = _views_menu(request, SavedView.Page.DEAL_LIST)
    if views["open_default"]:
        return redirect(views["open_default"])
    form = DealFilterForm(request.GET or None, user=request.user)
    deals = deals_filtered(request.user, request.GET).only(*DEAL_LIST_ROW_FIELDS)
    page = DeferredJoinPaginator(deals, DEAL_LIST_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    sort_query = query.copy()
    sort_query.pop("sort", None)
    template = "deals/_deal_table.html" if request.htmx else "deals/deal_list.html"
    return render(
        request,
        template,
        {
            "form": form,
            "page": page,
            "rows": deal_list_rows(page),
            "query": query.urlencode(),
            "sort_query": sort_query.urlencode(),
            "sort": request.GET.get("sort", "close"),
            "columns": DEAL_LIST_COLUMNS,
            "today": timezone.localdate(),
            "filtered": any(request.GET.get(k) for k in ("q", "state", "owner", "close")),
            "bulk_form": BulkActionForm(user=request.user),
            "views": views,
        },
    )


def _views_menu(request: HttpRequest, page: str) -> dict:
    """The saved views menu of a page (one query): the views, the one matching the current
    filters, and the team's default, which opens when the page is asked for without any
    parameter (`?view=none` shows the page unfiltered)."""
    user = request.user
    views = saved_views_for(user, page)
    current = services.saved_view_params(page, request.GET)
    default = next((v for v in views if v.team_default and v.team_id == user.team_id), None)
    return {
        "page": page,
        "list": views,
        "active": next((v for v in views if v.params == current), None) if current else None,
        "default": default,
        "open_default": default.url if default and not request.GET else None,
        "query": request.GET.urlencode(),
        "can_share": bool(user.team_id),
    }


@require_GET
@login_required
def search(request: HttpRequest) -> HttpResponse:
    """Deals, accounts and contacts by name, among what the user may see."""
    text = request.GET.get("q", "").strip()
    results = search_everything(request.user, text)
    total = sum(len(items) for items in results.values())
    return render(request, "deals/search.html", {"q": text, "results": results, "total": total})


# --- deals ------------------------------------------------------------------------


def _deal_form_fields(data: dict) -> dict:
    return {k: v for k, v in data.items() if k in services.DEAL_EDITABLE_FIELDS}


@require_http_methods(["GET", "POST"])
@login_required
def deal_create(request: HttpRequest) -> HttpResponse:
    user = request.user
    initial = {}
    if request.GET.get("account", "").isdigit():
        initial["account"] = int(request.GET["account"])
    form = DealForm(request.POST or None, user=user, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        account = data["account"]
        owner = data.get("owner") or (user if user.team_id else account.owner)
        fields = _deal_form_fields(data)
        fields.pop("title")
        fields.pop("amount")
        try:
            deal = services.deal_create(
                by=user,
                account=account,
                owner=owner,
                title=data["title"],
                amount=data["amount"],
                **{k: v for k, v in fields.items() if v not in (None, "")},
            )
        except services.DealError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, gettext("Deal “%(title)s” created.") % {"title": deal.title})
            return redirect(deal)
    return render(request, "deals/deal_form.html", {"form": form, "deal": None})


@require_http_methods(["GET", "POST"])
@login_required
def deal_edit(request: HttpRequest, pk: int) -> HttpResponse:
    deal = deal_get_visible(request.user, pk)
    if not can_work_deal(deal, request.user):
        raise PermissionDenied(can_work_deal.denied_message)
    form = DealForm(request.POST or None, user=request.user, instance=deal)
    if request.method == "POST" and form.is_valid():
        try:
            services.deal_update(deal=deal, by=request.user, **_deal_form_fields(form.cleaned_data))
        except services.DealError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, gettext("Deal saved."))
            for warning in form.past_date_warnings():
                messages.warning(request, warning)
            return redirect(deal)
    return render(request, "deals/deal_form.html", {"form": form, "deal": deal})


# --- accounts ---------------------------------------------------------------------


@require_GET
@login_required
def account_detail(request: HttpRequest, pk: int) -> HttpResponse:
    account = get_object_or_404(
        accounts_visible(request.user).select_related("owner", "account_manager", "team"), pk=pk
    )
    deals = (
        deals_visible(request.user)
        .filter(account=account)
        .select_related("owner")
        .order_by("-state_changed_at", "pk")
    )
    contacts = account.contacts.active().order_by("last_name", "first_name")
    open_deals = [d for d in deals if d.state in OPEN_STATES]
    return render(
        request,
        "deals/account_detail.html",
        {
            "account": account,
            "deals": deals,
            "open_count": len(open_deals),
            "contacts": contacts,
            "can_edit": _is_editor(account, request.user),
        },
    )


@require_http_methods(["GET", "POST"])
@login_required
def account_create(request: HttpRequest) -> HttpResponse:
    user = request.user
    if user.team_id is None:
        raise PermissionDenied("You are not in a team yet; an admin must add you to one.")
    form = AccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            account = services.account_create(by=user, team=user.team, **form.cleaned_data)
        except services.DealError as error:
            form.add_error("name", error.message)
        else:
            messages.success(
                request, gettext("Account “%(name)s” created.") % {"name": account.name}
            )
            return redirect(account)
    return render(request, "deals/account_form.html", {"form": form, "account": None})


@require_http_methods(["GET", "POST"])
@login_required
def account_edit(request: HttpRequest, pk: int) -> HttpResponse:
    account = get_object_or_404(accounts_visible(request.user).select_related("team"), pk=pk)
    if not _is_editor(account, request.user):
        raise PermissionDenied("Only the account's owner or the team's manager can edit it.")
    initial = {
        "name": account.name,
        "website": account.website,
        "industry": account.industry,
        "account_manager": account.account_manager_id,
    }
    form = AccountForm(request.POST or None, initial=initial, account=account)
    if request.method == "POST" and form.is_valid():
        try:
            services.account_update(account=account, by=request.user, **form.cleaned_data)
        except services.DealError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, gettext("Account saved."))
            return redirect(account)
    return render(request, "deals/account_form.html", {"form": form, "account": account})


# --- contacts ---------------------------------------------------------------------


@require_GET
@login_required
def contact_detail(request: HttpRequest, pk: int) -> HttpResponse:
    contact = get_object_or_404(
        contacts_visible(request.user).select_related("account", "account__team"), pk=pk
    )
    roles = (
        contact.stakeholder_roles.filter(deal__in=deals_visible(request.user))
        .select_related("deal")
        .order_by("-deal__last_activity_at")
    )
    return render(
        request,
        "deals/contact_detail.html",
        {"contact": contact, "roles": roles, "can_edit": _is_editor(contact.account, request.user)},
    )


@require_http_methods(["GET", "POST"])
@login_required
def contact_create(request: HttpRequest) -> HttpResponse:
    initial = {}
    if request.GET.get("account", "").isdigit():
        initial["account"] = int(request.GET["account"])
    form = ContactForm(request.POST or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        account = data.pop("account")
        try:
            contact = services.contact_create(by=request.user, account=account, **data)
        except services.DealError as error:
            form.add_error(None, error.message)
        else:
            messages.success(
                request,
                gettext("%(full_name)s added to %(account)s.")
                % {"full_name": contact.full_name, "account": account},
            )
            return redirect(contact)
    return render(request, "deals/contact_form.html", {"form": form, "contact": None})


@require_http_methods(["GET", "POST"])
@login_required
def contact_edit(request: HttpRequest, pk: int) -> HttpResponse:
    contact = get_object_or_404(contacts_visible(request.user).select_related("account"), pk=pk)
    if not _is_editor(contact.account, request.user):
        raise PermissionDenied("Only the account's owner or the team's manager can edit contacts.")
    initial = {
        f: getattr(contact, f) for f in ("first_name", "last_name", "email", "phone", "job_title")
    }
    form = ContactForm(request.POST or None, user=request.user, contact=contact, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.contact_update(contact=contact, by=request.user, **form.cleaned_data)
        except services.DealError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, gettext("Contact saved."))
            return redirect(contact)
    return render(request, "deals/contact_form.html", {"form": form, "contact": contact})


urlpatterns = [
    path("board/", board, name="board"),
    path("board/<int:pk>/moves/", board_moves, name="board_moves"),
    path("deals/", deal_list, name="deal_list"),
    path("deals/new/", deal_create, name="deal_create"),
    path("deals/<int:pk>/edit/", deal_edit, name="deal_edit"),
    path("search/", search, name="search"),
    path("accounts/new/", account_create, name="account_create"),
    path("accounts/<int:pk>/", account_detail, name="account_detail"),
    path("accounts/<int:pk>/edit/", account_edit, name="account_edit"),
    path("contacts/new/", contact_create, name="contact_create"),
    path("contacts/<int:pk>/", contact_detail, name="contact_detail"),
    path("contacts/<int:pk>/edit/", contact_edit, name="contact_edit"),
]
