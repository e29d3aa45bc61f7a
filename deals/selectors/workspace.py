"""Reads for the rep's workspace: My day, the board, the deal list, search, accounts, contacts.

Every function scopes to what the user may see (`deals_visible`) and runs a fixed number of
queries whatever the amount of data, so pages stay fast on large pipelines.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from contracts.models import WITH_BUYER_STATUSES

from ..models import (
    OPEN_STATES,
    Account,
    Contact,
    Deal,
    DealState,
    DealTotal,
    StageSetting,
    User,
    user_display_name,
)
from .core import deal_totals_visible, deals_visible

__all__ = [
    "DEAL_LIST_SORTS",
    "accounts_visible",
    "board_columns",
    "board_totals",
    "contacts_visible",
    "deal_filter_owners",
    "deals_filtered",
    "my_day",
    "search_everything",
    "stall_thresholds",
]

#: Sort keys the deal list offers: key -> (label, ordering).
DEAL_LIST_SORTS = {
    "close": (gettext_lazy("Expected close"), ("expected_close_date", "pk")),
    "-close": (gettext_lazy("Expected close (latest first)"), ("-expected_close_date", "-pk")),
    "amount": (gettext_lazy("Amount (smallest first)"), ("amount", "pk")),
    "-amount": (gettext_lazy("Amount"), ("-amount", "-pk")),
    "title": (gettext_lazy("Deal"), ("title", "pk")),
    "-title": (gettext_lazy("Deal (Z–A)"), ("-title", "-pk")),
    "account": (gettext_lazy("Account"), ("account__name", "pk")),
    "-account": (gettext_lazy("Account (Z–A)"), ("-account__name", "-pk")),
    "state": (gettext_lazy("State"), ("state", "pk")),
    "-state": (gettext_lazy("State (reverse)"), ("-state", "-pk")),
    "-activity": (gettext_lazy("Latest activity"), ("-last_activity_at", "-pk")),
    "activity": (gettext_lazy("Oldest activity"), ("last_activity_at", "pk")),
}
DEFAULT_DEAL_SORT = "close"

#: Contract statuses that mean "with the buyer, not signed yet".
AWAITING_SIGNATURE = WITH_BUYER_STATUSES


def _param(params, name: str) -> str:
    value = params.get(name, "") if params is not None else ""
    return str(value or "").strip()


def _month_range(value: str) -> tuple[dt.date, dt.date] | None:
    """'2026-11' -> (first day, first day of the next month); None if not a month."""
    try:
        year, month = (int(part) for part in value.split("-"))
        start = dt.date(year, month, 1)
    except (TypeError, ValueError):
        return None
    end = dt.date(year + (month == 12), month % 12 + 1, 1)
    return start, end


def _by_owner_and_team(queryset: QuerySet, user, params) -> QuerySet:
    """The `owner` (a user id, or `me`) and `team` (a team id) filters, for deals or for
    their running totals (both have `owner_id` and `team_id`)."""
    owner = _param(params, "owner")
    if owner == "me":
        queryset = queryset.filter(owner_id=user.pk)
    elif owner.isdigit():
        queryset = queryset.filter(owner_id=int(owner))
    team = _param(params, "team")
    if team.isdigit():
        queryset = queryset.filter(team_id=int(team))
    return queryset


def deals_filtered(user, params) -> QuerySet[Deal]:
    """The deals `user` may see, filtered and sorted by the deal list's parameters.

    `params` is a mapping (usually `request.GET`): `state` (a state, `open` or `closed`),
    `owner` (a user id, or `me`), `team` (a team id), `close` (expected close month,
    `YYYY-MM`), `q` (text in the deal title or account name) and `sort` (a key of
    DEAL_LIST_SORTS). Unknown or malformed values are ignored rather than refused, so a
    shared link never breaks. Used by the deal list and its CSV export.
    """
    deals = deals_visible(user).select_related("account", "owner")
    state = _param(params, "state")
    if state == "open":
        deals = deals.filter(state__in=OPEN_STATES)
    elif state == "closed":
        deals = deals.exclude(state__in=OPEN_STATES)
    elif state in DealState.values:
        deals = deals.filter(state=state)
    deals = _by_owner_and_team(deals, user, params)
    month = _month_range(_param(params, "close"))
    if month:
        deals = deals.filter(expected_close_date__gte=month[0], expected_close_date__lt=month[1])
    text = _param(params, "q")
    if text:
        deals = deals.filter(Q(title__icontains=text) | Q(account__name__icontains=text))
    sort = _param(params, "sort")
    ordering = DEAL_LIST_SORTS.get(sort, DEAL_LIST_SORTS[DEFAULT_DEAL_SORT])[1]
    if ordering[0].lstrip("-") == "expected_close_date":
        # Deals without a close date go last either way.
        date = F("expected_close_date")
        first = (
            date.desc(nulls_last=True) if ordering[0].startswith("-") else date.asc(nulls_last=True)
        )
        return deals.order_by(first, ordering[1])
    return deals.order_by(*ordering)


def deal_filter_owners(user) -> QuerySet[User]:
    """The people whose deals `user` can filter by (themselves, their team, or everyone)."""
    users = User.objects.filter(is_active=True).select_related("team")
    if user.is_superuser:
        return users.filter(Q(team__isnull=False) | Q(pk=user.pk))
    if user.team_id and (user.is_manager or (user.team and user.team.reps_see_team_deals)):
        return users.filter(team_id=user.team_id)
    return users.filter(pk=user.pk)


def accounts_visible(user) -> QuerySet[Account]:
    """Accounts `user` may read: their team's (admins: all; no team: the ones they own)."""
    accounts = Account.objects.active()
    if not user.is_authenticated:
        return accounts.none()
    if user.is_superuser:
        return accounts
    if user.team_id:
        return accounts.filter(team_id=user.team_id)
    return accounts.filter(owner=user)


def contacts_visible(user) -> QuerySet[Contact]:
    """Contacts of the accounts `user` may read."""
    return Contact.objects.active().filter(account__in=accounts_visible(user))


# --- My day ------------------------------------------------------------------


def stall_thresholds() -> dict[str, int]:
    """Days without activity after which a deal in each open state counts as stalled."""
    return dict(
        StageSetting.objects.filter(state__in=OPEN_STATES).values_list("state", "stall_after_days")
    )


@dataclass
class MyDay:
    """What needs the user's attention now, section by section, most urgent first."""

    today: dt.date
    only_mine: bool
    team_scope: bool
    next_steps: list[Deal] = field(default_factory=list)
    awaiting_signature: list[Deal] = field(default_factory=list)
    stalled: list[Deal] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    open_amounts: list[dict] = field(default_factory=list)


MY_DAY_LIMIT = 25


def my_day(user, *, only_mine: bool = False, now: dt.datetime | None = None) -> MyDay:
    """The open deals that need action now, by urgency, with the counts for the header.

    Reps see their own deals; managers (and admins) see the deals they can see unless
    `only_mine`. Sections: next steps due today or overdue (most overdue first); contracts
    with the buyer and not signed (oldest sent first); deals with no activity for longer
    than their state's `stall_after_days` (longest silent first). Five queries in all.
    """
    from contracts.models import ContractVersion

    now = now or timezone.now()
    today = timezone.localdate(now)
    team_scope = (user.is_manager or user.is_superuser) and not only_mine
    deals = deals_visible(user).filter(state__in=OPEN_STATES)
    if not team_scope:
        deals = deals.filter(owner_id=user.pk)
    deals = deals.select_related("account", "owner")

    awaiting = ContractVersion.objects.filter(
        deal=OuterRef("pk"), status__in=AWAITING_SIGNATURE, sent_at__isnull=False
    ).order_by("-sent_at")
    awaiting_q = Q(state__in=[DealState.AGREEMENT_SENT, DealState.FOLLOW_UP]) & Q(Exists(awaiting))

    thresholds = stall_thresholds()
    stalled_q = Q(pk__in=[])
    for state in OPEN_STATES:
        days = thresholds.get(state)
        if days:
            stalled_q |= Q(state=state, last_activity_at__lt=now - dt.timedelta(days=days))

    due_q = Q(next_step_due__lte=today)
    counts = deals.aggregate(
        open=Count("pk"),
        overdue=Count("pk", filter=Q(next_step_due__lt=today)),
        due_today=Count("pk", filter=Q(next_step_due=today)),
        awaiting_signature=Count("pk", filter=awaiting_q),
        stalled=Count("pk", filter=stalled_q),
    )
    result = MyDay(today=today, only_mine=only_mine, team_scope=team_scope, counts=counts)

    result.next_steps = list(deals.filter(due_q).order_by("next_step_due", "pk")[:MY_DAY_LIMIT])
    for deal in result.next_steps:
        deal.days_overdue = (today - deal.next_step_due).days

    result.awaiting_signature = list(
        deals.filter(awaiting_q)
        .annotate(
            contract_sent_at=Subquery(awaiting.values("sent_at")[:1]),
            contract_status=Subquery(awaiting.values("status")[:1]),
            contract_number=Subquery(awaiting.values("number")[:1]),
        )
        .order_by("contract_sent_at", "pk")[:MY_DAY_LIMIT]
    )
    statuses = dict(ContractVersion.Status.choices)
    for deal in result.awaiting_signature:
        deal.contract_age_days = (now - deal.contract_sent_at).days
        deal.contract_status_label = statuses.get(deal.contract_status, deal.contract_status)

    result.stalled = list(deals.filter(stalled_q).order_by("last_activity_at", "pk")[:MY_DAY_LIMIT])
    for deal in result.stalled:
        _mark_stall(deal, thresholds, now)
    return result


def _mark_stall(deal: Deal, thresholds: dict[str, int], now: dt.datetime) -> None:
    """Attach how long the deal has been silent and how bad that is (a level and a label)."""
    limit = thresholds.get(deal.state) or 0
    silent = (now - deal.last_activity_at).days
    deal.silent_days = silent
    deal.stall_limit = limit
    if limit and silent >= 2 * limit:
        deal.stall_level, deal.stall_label = "bad", gettext("Stalled badly")
    else:
        deal.stall_level, deal.stall_label = "warn", gettext("Stalled")


# --- the board ----------------------------------------------------------------

BOARD_COLUMN_LIMIT = 40


@dataclass(frozen=True)
class BoardCard:
    """What one board card shows (deals.templatetags.board renders it): plain values read
    with `values_list`, because 200 model instances with their account and owner cost more
    than the whole rest of the board."""

    pk: int
    title: str
    state: str
    amount: Decimal | None
    currency: str
    owner_id: int
    account: str
    owner: str
    expected_close_date: dt.date | None
    next_step: str
    next_step_due: dt.date | None
    days_in_state: int
    is_stalled: bool


_CARD_VALUES = (
    "pk",
    "title",
    "state",
    "amount",
    "currency",
    "owner_id",
    "account__name",
    "owner__username",
    "owner__first_name",
    "owner__last_name",
    "expected_close_date",
    "next_step",
    "next_step_due",
    "state_changed_at",
    "last_activity_at",
)


def _board_cards(deals: QuerySet[Deal], state: str, *, now: dt.datetime, stall_days: int):
    rows = (
        deals.filter(state=state)
        .order_by(F("expected_close_date").asc(nulls_last=True), "pk")
        .values_list(*_CARD_VALUES)[:BOARD_COLUMN_LIMIT]
    )
    stalled_before = now - dt.timedelta(days=stall_days) if stall_days else None
    cards = []
    for (
        pk, title, state_, amount, currency, owner_id, account, username, first, last,
        close, next_step, next_due, changed_at, active_at,
    ) in rows:  # fmt: skip
        cards.append(
            BoardCard(
                pk=pk,
                title=title,
                state=state_,
                amount=amount,
                currency=currency,
                owner_id=owner_id,
                account=account,
                owner=user_display_name(first, last, username),
                expected_close_date=close,
                next_step=next_step,
                next_step_due=next_due,
                days_in_state=(now - changed_at).days,  # Deal.days_in_state
                is_stalled=stalled_before is not None and active_at < stalled_before,
            )
        )
    return cards


def board_totals(user, params) -> QuerySet[DealTotal] | None:
    """The running totals of the board's deals (`deals_filtered(user, params)` with the
    board's owner and team filters), or None when a filter has no running total (the
    expected close month): then the board aggregates its deals."""
    if _month_range(_param(params, "close")):
        return None
    return _by_owner_and_team(deal_totals_visible(user), user, params)


def board_columns(
    deals: QuerySet[Deal],
    *,
    totals: QuerySet[DealTotal] | None = None,
    now: dt.datetime | None = None,
) -> list[dict]:
    """One column per open state: its first cards (closest close date first) and its totals.

    `deals` is an already scoped and filtered queryset. Totals come from the shared
    `pipeline_by_state` selector (per currency), so the board agrees with the dashboards,
    over `totals` (the same deals' running totals, `board_totals`) when given.
    One query per column plus two for the totals.
    """
    # The read side owns the figure; imported here so deals loads without pipeline.
    from pipeline.selectors import pipeline_by_state

    now = now or timezone.now()
    thresholds = stall_thresholds()
    by_state: dict[str, list[dict]] = {state: [] for state in OPEN_STATES}
    for row in pipeline_by_state(deals if totals is None else totals, OPEN_STATES):
        by_state[row["state"]].append(row)
    columns = []
    for state in OPEN_STATES:
        rows = by_state[state]
        cards = _board_cards(deals, state, now=now, stall_days=thresholds.get(state) or 0)
        count = sum(r["count"] for r in rows)
        columns.append(
            {
                "state": state,
                "label": DealState(state).label,
                "cards": cards,
                "count": count,
                "hidden": max(count - len(cards), 0),
                "totals": rows,
                "amount": sum((r["amount"] for r in rows), Decimal("0")),
                "weighted": sum((r["weighted"] for r in rows), Decimal("0")),
                "probability": rows[0]["probability"] if rows else None,
            }
        )
    return columns


# --- search ---------------------------------------------------------------------

SEARCH_LIMIT = 20


def search_everything(user, text: str) -> dict[str, list]:
    """Deals, accounts and contacts whose name contains `text`, among those `user` may see."""
    text = (text or "").strip()
    if len(text) < 2:
        return {"deals": [], "accounts": [], "contacts": []}
    deals = (
        deals_visible(user)
        .filter(Q(title__icontains=text) | Q(account__name__icontains=text))
        .select_related("account", "owner")
        .order_by("-last_activity_at", "pk")[:SEARCH_LIMIT]
    )
    accounts = (
        accounts_visible(user)
        .filter(name__icontains=text)
        .annotate(open_deals=Count("deals", filter=Q(deals__state__in=OPEN_STATES)))
        .order_by("name", "pk")[:SEARCH_LIMIT]
    )
    name_q = Q(first_name__icontains=text) | Q(last_name__icontains=text) | Q(email__icontains=text)
    parts = text.split(None, 1)
    if len(parts) == 2:
        name_q |= Q(first_name__icontains=parts[0], last_name__icontains=parts[1])
    contacts = (
        contacts_visible(user)
        .filter(name_q)
        .select_related("account")
        .order_by("last_name", "first_name", "pk")[:SEARCH_LIMIT]
    )
    return {"deals": list(deals), "accounts": list(accounts), "contacts": list(contacts)}
