"""Pipeline figures shared by the board, dashboards, CSV exports and the API.

Every figure is computed by the database (aggregates, conditional aggregates and
window functions that run on SQLite and PostgreSQL alike); Python only reshapes
the few aggregated rows. Amounts are never added across currencies: each figure
that sums money is per currency (the dashboard states this choice).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connections
from django.db.models import (
    Avg,
    BooleanField,
    Case,
    CharField,
    Count,
    DecimalField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncMonth
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from contracts.models import WITH_BUYER_STATUSES
from deals.models import (
    OPEN_STATES,
    Ask,
    Deal,
    DealState,
    DealStay,
    DealTotal,
    LossReason,
    Objection,
    StageSetting,
    Stakeholder,
    Team,
    User,
)
from deals.selectors import deal_totals_visible

__all__ = [
    "COACHING_QUESTIONS",
    "CONTRACT_AGE_BUCKETS",
    "FORECAST_CATEGORIES",
    "PERIODS",
    "DashboardFilters",
    "asks_per_won_deal",
    "close_rate",
    "coaching_deals",
    "coaching_page",
    "contracts_out_by_age",
    "dashboard_deals",
    "dashboard_drilldown",
    "dashboard_filters",
    "dashboard_totals",
    "forecast_by_month",
    "loss_reasons",
    "objections_by_category",
    "pipeline_by_state",
    "reps_side_by_side",
    "stage_probabilities",
    "stage_settings",
    "stalled_by_state",
    "time_in_state",
]

ZERO = Decimal("0")
MONEY = DecimalField(max_digits=16, decimal_places=2)

#: Forecast categories by state: a contract out for signature is "commit", a deal being
#: asked or negotiated is "best case", a buying signal alone is "pipeline".
FORECAST_CATEGORIES = [
    ("commit", gettext_lazy("Commit"), [DealState.AGREEMENT_SENT, DealState.FOLLOW_UP]),
    ("best_case", gettext_lazy("Best case"), [DealState.ASKED, DealState.NEGOTIATING]),
    ("pipeline", gettext_lazy("Pipeline"), [DealState.INTENT_SPOTTED]),
]

#: Age of a contract out for signature, in whole days since it was sent.
CONTRACT_AGE_BUCKETS = [
    ("0_2", gettext_lazy("0–2 days"), 0, 2),
    ("3_7", gettext_lazy("3–7 days"), 3, 7),
    ("8_14", gettext_lazy("8–14 days"), 8, 14),
    ("15_30", gettext_lazy("15–30 days"), 15, 30),
    ("31_", gettext_lazy("over 30 days"), 31, None),
]
CONTRACT_OUT_STATUSES = WITH_BUYER_STATUSES

#: The coaching questions, each answered from what was recorded on the deal.
COACHING_QUESTIONS = [
    (
        "needs",
        gettext_lazy("Needs understood?"),
        gettext_lazy("Readiness item “Needs understood” is ticked."),
    ),
    (
        "value",
        gettext_lazy("Value clear?"),
        gettext_lazy("“Value established” is ticked or the expected metrics are written."),
    ),
    (
        "objections",
        gettext_lazy("Objections resolved?"),
        gettext_lazy("No objection on the deal is still open."),
    ),
    ("ask", gettext_lazy("Ask made?"), gettext_lazy("At least one ask for the sale is recorded.")),
    (
        "signer",
        gettext_lazy("Signer known?"),
        gettext_lazy("A signer is in the buying group or “signer known” is ticked."),
    ),
]

PERIODS = [
    ("30d", gettext_lazy("Last 30 days")),
    ("90d", gettext_lazy("Last 90 days")),
    ("quarter", gettext_lazy("This quarter")),
    ("year", gettext_lazy("This year")),
    ("custom", gettext_lazy("Custom dates")),
]


# --- scope and filters ------------------------------------------------------------


@dataclass
class DashboardFilters:
    """What the dashboard shows, resolved against what the user may see."""

    user: User
    team: Team | None
    rep: User | None
    period: str
    start: dt.date
    end: dt.date  # inclusive
    currency: str
    teams: list = field(default_factory=list)  # teams the user may pick (admins only)
    reps: list = field(default_factory=list)  # reps the user may pick

    @property
    def start_at(self) -> dt.datetime:
        return _day_start(self.start)

    @property
    def end_at(self) -> dt.datetime:
        """Exclusive end: the start of the day after `end`."""
        return _day_start(self.end + dt.timedelta(days=1))

    def params(self, **extra) -> dict[str, str]:
        """Query parameters that reproduce these filters (for links and CSV)."""
        params = {"period": self.period, "currency": self.currency}
        if self.period == "custom":
            params["start"] = self.start.isoformat()
            params["end"] = self.end.isoformat()
        if self.team is not None and self.user.is_superuser:
            params["team"] = str(self.team.pk)
        if self.rep is not None and self.rep.pk != self.user.pk:
            params["rep"] = str(self.rep.pk)
        params.update({k: str(v) for k, v in extra.items() if v not in (None, "")})
        return params


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _parse_id(value) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Http404("No such team or rep.") from None


def _parse_date(value) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _period_dates(period: str, params, today: dt.date) -> tuple[str, dt.date, dt.date]:
    """The period's first and last day. Dates typed into the form that differ from the
    named period's own dates make it a custom period (no JavaScript needed)."""
    if period == "30d":
        named = (period, today - dt.timedelta(days=29), today)
    elif period == "quarter":
        first_month = 3 * ((today.month - 1) // 3) + 1
        named = (period, today.replace(month=first_month, day=1), today)
    elif period == "year":
        named = (period, today.replace(month=1, day=1), today)
    else:
        named = ("90d", today - dt.timedelta(days=89), today)
    start = _parse_date(params.get("start"))
    end = _parse_date(params.get("end"))
    if start and end and start <= end and (period == "custom" or (start, end) != named[1:]):
        return "custom", start, end
    return named


def dashboard_filters(user: User, params) -> DashboardFilters:
    """Resolve team, rep, period and currency from request parameters.

    Admins may pick any team; managers see their own team; reps see their own deals.
    A team or rep id outside what the user may see raises Http404 (never a hint that it
    exists), so changing a parameter never widens the scope.
    """
    team_id = _parse_id(params.get("team"))
    rep_id = _parse_id(params.get("rep"))
    teams: list = []
    if user.is_superuser:
        teams = list(Team.objects.order_by("name"))
        team = None
        if team_id is not None:
            team = next((t for t in teams if t.pk == team_id), None)
            if team is None:
                raise Http404("No such team.")
    else:
        team = user.team
        if team_id is not None and team_id != user.team_id:
            raise Http404("No such team.")

    if user.is_superuser or user.is_manager:
        reps_qs = User.objects.filter(
            Exists(Deal.objects.filter(owner=OuterRef("pk"))), is_active=True
        )
        if team is not None:
            reps_qs = User.objects.filter(team=team, is_active=True)
        elif not user.is_superuser:
            reps_qs = User.objects.none()
        reps = list(reps_qs.order_by("first_name", "last_name", "username"))
        rep = None
        if rep_id is not None:
            rep = next((r for r in reps if r.pk == rep_id), None)
            if rep is None:
                raise Http404("No such rep.")
    else:
        reps = [user]
        rep = user
        if rep_id is not None and rep_id != user.pk:
            raise Http404("No such rep.")

    period, start, end = _period_dates(params.get("period") or "90d", params, timezone.localdate())
    currency = params.get("currency") or ""
    if currency not in dict(Deal._meta.get_field("currency").choices):
        currency = (team.currency if team else None) or (
            user.team.currency if user.team_id else "EUR"
        )
    return DashboardFilters(
        user=user,
        team=team,
        rep=rep,
        period=period,
        start=start,
        end=end,
        currency=currency,
        teams=teams,
        reps=reps,
    )


def dashboard_deals(filters: DashboardFilters):
    """The deals behind every dashboard figure: visible to the user, then team and rep."""
    deals = Deal.objects.visible_to(filters.user).active()
    if filters.team is not None:
        deals = deals.filter(team=filters.team)
    if filters.rep is not None:
        deals = deals.filter(owner=filters.rep)
    return deals.order_by()


def dashboard_totals(filters: DashboardFilters):
    """The running totals (deals.DealTotal: count and amount per team, owner, state and
    currency of the deals not archived) of the same deals as `dashboard_deals`: a few
    hundred rows instead of every deal, for the figures over all deals in scope."""
    totals = deal_totals_visible(filters.user)
    if filters.team is not None:
        totals = totals.filter(team=filters.team)
    if filters.rep is not None:
        totals = totals.filter(owner=filters.rep)
    return totals.order_by()


def _all_active(deals) -> bool:
    """Whether `deals` is every deal that is not archived (an admin's all-teams scope)."""
    return deals.model is Deal and deals.query.where == Deal.objects.active().query.where


def _in_scope(deals, field: str = "deal") -> Q:
    """Rows (asks, objections, contracts…) whose deal is in `deals`. For the all-teams
    scope that is "not one of the few archived deals" (a small anti-join on the
    `deal_archived` index) rather than a semi-join over every deal id."""
    if _all_active(deals):
        archived = Deal.objects.filter(archived_at__isnull=False).values("id")
        return ~Q(**{f"{field}__in": archived})
    return Q(**{f"{field}__in": deals.values("id")})


def _state_currency_rows(deals, keys: tuple[str, ...]) -> list[dict]:
    """Count and amount grouped by `keys`, from deals or from their running totals."""
    if deals.model is DealTotal:
        return list(
            deals.values(*keys)
            .annotate(count=Sum("deals"), amount=Coalesce(Sum("amount"), Value(ZERO)))
            .filter(count__gt=0)
            .order_by()
        )
    return list(
        deals.values(*keys)
        .annotate(count=Count("id"), amount=Coalesce(Sum("amount"), Value(ZERO)))
        .order_by()
    )


# --- stage settings ---------------------------------------------------------------


def stage_settings() -> dict[str, StageSetting]:
    return {s.state: s for s in StageSetting.objects.all()}


def stage_probabilities() -> dict[str, int]:
    return dict(StageSetting.objects.values_list("state", "probability"))


def _category_case():
    return Case(
        *[When(state__in=states, then=Value(key)) for key, _label, states in FORECAST_CATEGORIES],
        default=Value(""),
        output_field=CharField(),
    )


def _stalled_q(settings: dict[str, StageSetting], now: dt.datetime) -> Q:
    """Open deals whose last activity is older than their state's stall threshold."""
    q = Q(pk__in=[])
    for state in OPEN_STATES:
        setting = settings.get(state)
        if setting is None or not setting.stall_after_days:
            continue
        q |= Q(state=state, last_activity_at__lt=now - dt.timedelta(days=setting.stall_after_days))
    return q


def _stalled_counts(deals, settings: dict[str, StageSetting], key: str, totals=None) -> dict:
    """Stalled open deals per `key` ("state" or "owner").

    With the running totals, stalled = open deals in a state with a stall threshold minus
    those active more recently than it: the recent ones are a range read on the
    `deal_activity` index, where the stalled ones (most open deals, on a busy pipeline
    with years of history) would be a scan of every open deal."""
    now = timezone.now()
    if totals is None:
        rows = deals.filter(_stalled_q(settings, now)).values(key).annotate(n=Count("id"))
        return {r[key]: r["n"] for r in rows.order_by()}
    watched = [s for s in OPEN_STATES if s in settings and settings[s].stall_after_days]
    recent_q = Q(pk__in=[])
    for state in watched:
        since = now - dt.timedelta(days=settings[state].stall_after_days)
        recent_q |= Q(state=state, last_activity_at__gte=since)
    counts = {
        r[key]: r["n"]
        for r in totals.filter(state__in=watched).values(key).annotate(n=Sum("deals")).order_by()
    }
    recent = deals.filter(recent_q).values(key).annotate(n=Count("id")).order_by()
    for r in recent:
        counts[r[key]] = counts.get(r[key], 0) - r["n"]
    return {k: n for k, n in counts.items() if n}


# --- figures ------------------------------------------------------------------------


def pipeline_by_state(deals, states=None) -> list[dict]:
    """Per state and currency: count, amount and weighted amount (amount × probability).

    One query for the figures plus one for the probabilities. Rows are ordered by
    state (the process order) then currency. `deals` may be the running totals of the
    deals (`dashboard_totals`): the same figures from a few hundred rows.
    """
    states = list(states or DealState.values)
    probabilities = stage_probabilities()
    rows = _state_currency_rows(deals.filter(state__in=states), ("state", "currency"))
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


def forecast_by_month(deals) -> list[dict]:
    """Open deals by expected close month, forecast category and currency.

    Rows: month (first day, or None when no date is set), category, currency, count,
    amount. Past months are kept as they are: the page marks them overdue.
    """
    rows = (
        deals.filter(state__in=OPEN_STATES)
        .annotate(month=TruncMonth("expected_close_date"), category=_category_case())
        .values("month", "category", "currency")
        .annotate(count=Count("id"), amount=Coalesce(Sum("amount"), Value(ZERO)))
        .order_by()
    )
    order = {key: i for i, (key, _l, _s) in enumerate(FORECAST_CATEGORIES)}
    rows = [
        {**r, "month": r["month"].date() if isinstance(r["month"], dt.datetime) else r["month"]}
        for r in rows
    ]
    return sorted(
        rows,
        key=lambda r: (r["month"] is None, r["month"] or dt.date.min, order[r["category"]]),
    )


def close_rate(deals, start_at: dt.datetime, end_at: dt.datetime) -> dict:
    """Won and lost deals closed in [start_at, end_at), the close rate and cycle time.

    Close rate = won / (won + lost). Cycle time = average days from the deal's creation
    to its close, over the won deals. A reopened deal counts by its latest close only
    (reopening clears the close date), so it is never counted twice.
    """
    cycle = ExpressionWrapper(F("closed_at") - F("created_at"), output_field=DurationField())
    won = Q(state=DealState.CLOSED_WON)
    row = deals.filter(
        state__in=[DealState.CLOSED_WON, DealState.CLOSED_LOST],
        closed_at__gte=start_at,
        closed_at__lt=end_at,
    ).aggregate(
        won=Count("id", filter=won),
        lost=Count("id", filter=Q(state=DealState.CLOSED_LOST)),
        cycle=Avg(cycle, filter=won),
    )
    closed = row["won"] + row["lost"]
    cycle_days = row["cycle"].total_seconds() / 86400 if row["cycle"] is not None else None
    return {
        "won": row["won"],
        "lost": row["lost"],
        "closed": closed,
        "rate": (row["won"] / closed) if closed else None,
        "cycle_days": cycle_days,
    }


def won_amounts(deals, start_at, end_at) -> list[dict]:
    """Won amount per currency for deals won in the period."""
    return list(
        deals.filter(state=DealState.CLOSED_WON, closed_at__gte=start_at, closed_at__lt=end_at)
        .values("currency")
        .annotate(count=Count("id"), amount=Coalesce(Sum("amount"), Value(ZERO)))
        .order_by("currency")
    )


__all__.append("won_amounts")


def asks_per_won_deal(deals, start_at, end_at) -> dict:
    """How many asks the deals won in the period needed, on average."""
    won = deals.filter(state=DealState.CLOSED_WON, closed_at__gte=start_at, closed_at__lt=end_at)
    row = Ask.objects.filter(deal__in=won.values("id")).aggregate(asks=Count("id"))
    count = won.count()
    return {
        "won": count,
        "asks": row["asks"],
        "per_deal": (row["asks"] / count) if count else None,
    }


def loss_reasons(deals, start_at, end_at) -> list[dict]:
    """Lost deals closed in the period by recorded reason, most frequent first."""
    rows = (
        deals.filter(state=DealState.CLOSED_LOST, closed_at__gte=start_at, closed_at__lt=end_at)
        .values("loss_reason")
        .annotate(count=Count("id"))
        .order_by("-count", "loss_reason")
    )
    labels = dict(LossReason.choices)
    return [{**r, "label": labels.get(r["loss_reason"], "Not recorded")} for r in rows]


def objections_by_category(deals, start_at, end_at) -> list[dict]:
    """Objections raised in the period by category: how many, and how many were resolved."""
    rows = (
        Objection.objects.filter(_in_scope(deals), raised_at__gte=start_at, raised_at__lt=end_at)
        .values("category")
        .annotate(
            count=Count("id"),
            resolved=Count("id", filter=Q(status=Objection.Status.RESOLVED)),
            open=Count("id", filter=Q(status=Objection.Status.OPEN)),
            accepted_loss=Count("id", filter=Q(status=Objection.Status.ACCEPTED_LOSS)),
            stalls=Count("id", filter=Q(is_stall=True)),
        )
        .order_by("-count", "category")
    )
    labels = dict(Objection.Category.choices)
    return [
        {
            **r,
            "label": labels.get(r["category"], r["category"]),
            "resolved_rate": r["resolved"] / r["count"] if r["count"] else None,
        }
        for r in rows
    ]


def stalled_by_state(
    deals, settings: dict[str, StageSetting] | None = None, totals=None
) -> list[dict]:
    """Open deals with no activity for longer than their state's `stall_after_days`
    (with `totals`, the running totals of `deals`: open minus recently active)."""
    settings = settings if settings is not None else stage_settings()
    counts = _stalled_counts(deals, settings, "state", totals)
    return [
        {
            "state": state,
            "label": DealState(state).label,
            "stall_after_days": settings[state].stall_after_days if state in settings else None,
            "count": counts.get(state, 0),
        }
        for state in OPEN_STATES
    ]


def contracts_out_by_age(deals) -> list[dict]:
    """Contracts out for signature (sent, delivered, viewed) on open deals, by age."""
    from contracts.models import ContractVersion

    now = timezone.now()
    whens = []
    for key, _label, low, high in CONTRACT_AGE_BUCKETS:
        condition = Q(sent_at__lte=now - dt.timedelta(days=low))
        if high is not None:
            condition &= Q(sent_at__gt=now - dt.timedelta(days=high + 1))
        whens.append(When(condition, then=Value(key)))
    rows = (
        ContractVersion.objects.filter(
            deal__in=deals.filter(state__in=OPEN_STATES).values("id"),
            status__in=CONTRACT_OUT_STATUSES,
        )
        .annotate(bucket=Case(*whens, default=Value("unknown"), output_field=CharField()))
        .values("bucket")
        .annotate(count=Count("id"))
        .order_by()
    )
    counts = {r["bucket"]: r["count"] for r in rows}
    result = [
        {"bucket": key, "label": label, "count": counts.get(key, 0)}
        for key, label, _low, _high in CONTRACT_AGE_BUCKETS
    ]
    if counts.get("unknown"):
        result.append(
            {"bucket": "unknown", "label": gettext("Send date unknown"), "count": counts["unknown"]}
        )
    return result


def time_in_state(deals, start_at, end_at) -> list[dict]:
    """Median and 75th percentile of the days deals spent in each open state.

    Read from the stays table (one row per deal per stay in a state, written with each
    transition; a closed stay carries the deal's total seconds in the state so far, so a
    reopened deal's stays are added up). A deal counts in a state's figures when its last
    stay there ended in the period: among its stays in the state that ended in the period,
    the latest holds the total. Stays still running are not counted (see stalled deals
    for those). Percentiles use the nearest-rank method, computed by window functions in
    the database; the whole query reads the `stay_left` index.
    """
    if _all_active(deals):  # all teams: leave out the few archived deals
        scope = Deal.objects.filter(archived_at__isnull=False).values("id")
        in_scope = "NOT IN"
    else:
        scope = deals.values("id")
        in_scope = "IN"
    ids_sql, ids_params = scope.query.get_compiler(using=deals.db).as_sql()
    table = DealStay._meta.db_table
    states = list(OPEN_STATES)
    placeholders = ", ".join(["%s"] * len(states))
    connection = connections[deals.db]  # the replica when the router sends reads there
    ops = connection.ops
    # `left_at IS NOT NULL` is written out so that SQLite matches the partial index.
    stays = f"""
        WITH stays AS (
            SELECT deal_id, state, MAX(state_seconds) AS secs
            FROM {table}
            WHERE left_at IS NOT NULL AND left_at >= %s AND left_at < %s
              AND state IN ({placeholders}) AND deal_id {in_scope} ({ids_sql})
            GROUP BY deal_id, state
        )"""
    if connection.vendor == "postgresql":
        # Ordered-set aggregates: one sort per state instead of two window passes.
        # percentile_disc(p) is the first value at or past p·n: the nearest rank.
        sql = f"""{stays}
        SELECT state, COUNT(*),
               percentile_disc(0.5) WITHIN GROUP (ORDER BY secs),
               percentile_disc(0.75) WITHIN GROUP (ORDER BY secs),
               AVG(secs)
        FROM stays GROUP BY state
        """
    else:
        sql = f"""{stays},
        ranked AS (
            SELECT state, secs,
                   ROW_NUMBER() OVER (PARTITION BY state ORDER BY secs) AS rn,
                   COUNT(*) OVER (PARTITION BY state) AS n
            FROM stays
        )
        SELECT state, MAX(n),
               MAX(CASE WHEN rn = (50 * n + 99) / 100 THEN secs END),
               MAX(CASE WHEN rn = (75 * n + 99) / 100 THEN secs END),
               AVG(secs)
        FROM ranked GROUP BY state
        """
    start = ops.adapt_datetimefield_value(start_at)
    end = ops.adapt_datetimefield_value(end_at)
    params = [start, end, *states, *ids_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = {row[0]: row[1:] for row in cursor.fetchall()}

    def days(value):
        return float(value) / 86400 if value is not None else None

    return [
        {
            "state": state,
            "label": DealState(state).label,
            "deals": found[state][0] if state in found else 0,
            "median_days": days(found[state][1]) if state in found else None,
            "p75_days": days(found[state][2]) if state in found else None,
            "mean_days": days(found[state][3]) if state in found else None,
        }
        for state in states
    ]


def reps_side_by_side(
    deals, start_at, end_at, currency: str, settings=None, totals=None
) -> list[dict]:
    """One row per rep: open deals, open amount, weighted amount (in `currency`), won and
    lost in the period, close rate, stalled deals, asks recorded in the period.

    Four small reads instead of one aggregate with a dozen filters over every deal: the
    open figures per owner, state and currency (from the running totals `totals` when
    given, else from the deals), the deals closed in the period (the closed-at index), the
    stalled ones (the state/last-activity index) and the asks; then names."""
    settings = settings if settings is not None else stage_settings()
    probability = {s: settings[s].probability for s in OPEN_STATES if s in settings}
    asks = dict(
        Ask.objects.filter(_in_scope(deals), asked_at__gte=start_at, asked_at__lt=end_at)
        .values_list("deal__owner")
        .annotate(n=Count("id"))
        .order_by()
    )
    rows: dict[int, dict] = {}

    def row(owner_id) -> dict:
        if owner_id not in rows:
            rows[owner_id] = {
                "owner": owner_id,
                "open": 0,
                "open_amount": ZERO,
                "weighted": ZERO,
                "other_currency": 0,
                "won": 0,
                "won_amount": ZERO,
                "lost": 0,
                "stalled": 0,
            }
        return rows[owner_id]

    source = totals if totals is not None else deals
    for r in _state_currency_rows(source, ("owner", "state", "currency")):
        entry = row(r["owner"])
        if r["state"] not in OPEN_STATES:
            continue
        entry["open"] += r["count"]
        if r["currency"] == currency:
            entry["open_amount"] += r["amount"]
            entry["weighted"] += r["amount"] * probability.get(r["state"], 0) / 100
        else:
            entry["other_currency"] += r["count"]
    won = Q(state=DealState.CLOSED_WON)
    closed = (
        deals.filter(
            state__in=[DealState.CLOSED_WON, DealState.CLOSED_LOST],
            closed_at__gte=start_at,
            closed_at__lt=end_at,
        )
        .values("owner")
        .annotate(
            won=Count("id", filter=won),
            won_amount=Coalesce(Sum("amount", filter=won & Q(currency=currency)), Value(ZERO)),
            lost=Count("id", filter=Q(state=DealState.CLOSED_LOST)),
        )
        .order_by()
    )
    for r in closed:
        row(r["owner"]).update(won=r["won"], won_amount=r["won_amount"], lost=r["lost"])
    for owner_id, n in _stalled_counts(deals, settings, "owner", totals).items():
        row(owner_id)["stalled"] = n
    # Names in a second small query: grouping on the owner id alone keeps the aggregates
    # free of a join.
    names = {
        user.pk: str(user)
        for user in User.objects.filter(pk__in=list(rows)).only(
            "first_name", "last_name", "username"
        )
    }
    result = []
    for r in rows.values():
        closed_n = r["won"] + r["lost"]
        result.append(
            {
                **r,
                "name": names.get(r["owner"], ""),
                "weighted": Decimal(r["weighted"]).quantize(Decimal("0.01")),
                "rate": r["won"] / closed_n if closed_n else None,
                "asks": asks.get(r["owner"], 0),
            }
        )
    return sorted(result, key=lambda r: (r["name"].lower(), r["owner"]))


# --- coaching -----------------------------------------------------------------------


def coaching_deals(deals, *, answers: bool = True):
    """Open deals annotated with the answer to each coaching question (True/False) and
    `coaching_score` (how many are answered yes); weakest first.

    With `answers=False` only the score is selected (each question's subquery is then
    evaluated once per deal instead of twice): the lean ranking `coaching_page` pages."""
    open_objection = Objection.objects.filter(deal=OuterRef("pk"), status=Objection.Status.OPEN)
    any_ask = Ask.objects.filter(deal=OuterRef("pk"))
    signer = Stakeholder.objects.filter(deal=OuterRef("pk"), role=Stakeholder.Role.SIGNER)
    flags = {
        "q_needs": F("ready_needs_understood"),
        "q_value": ExpressionWrapper(
            Q(ready_value_established=True) | ~Q(metrics=""), output_field=BooleanField()
        ),
        "q_objections": ~Exists(open_objection),
        "q_ask": Exists(any_ask),
        "q_signer": ExpressionWrapper(
            Q(ready_signer_known=True) | Exists(signer), output_field=BooleanField()
        ),
    }
    qs = deals.filter(state__in=OPEN_STATES)
    qs = qs.annotate(**flags) if answers else qs.alias(**flags)
    score = sum(
        (
            Case(When(**{f"q_{key}": True}, then=Value(1)), default=Value(0))
            for key, _l, _h in COACHING_QUESTIONS
        ),
        Value(0),
    )
    qs = qs.annotate(coaching_score=ExpressionWrapper(score, output_field=IntegerField()))
    if answers:
        qs = qs.select_related("owner", "account")
    return qs.order_by("coaching_score", "-amount", "pk")


def coaching_page(deals, number, per_page: int = 50):
    """One page of `coaching_deals`: the ranking reads ids and scores only, then the
    page's deals are loaded with their answers (three queries whatever the page)."""
    from django.core.paginator import Paginator

    ranked = coaching_deals(deals, answers=False).values_list("pk", flat=True)
    page = Paginator(ranked, per_page).get_page(number)
    ids = list(page.object_list)
    found = {deal.pk: deal for deal in coaching_deals(deals.filter(pk__in=ids))}
    page.object_list = [found[pk] for pk in ids if pk in found]
    return page


def _coaching_q(key: str) -> Q:
    """Deals whose answer to coaching question `key` is no (for drill-down links)."""
    if key == "needs":
        return Q(ready_needs_understood=False)
    if key == "value":
        return Q(ready_value_established=False, metrics="")
    if key == "objections":
        return Q(objections__status=Objection.Status.OPEN)
    if key == "ask":
        return ~Q(pk__in=Ask.objects.values("deal_id"))
    if key == "signer":
        return Q(ready_signer_known=False) & ~Q(
            pk__in=Stakeholder.objects.filter(role=Stakeholder.Role.SIGNER).values("deal_id")
        )
    raise Http404("No such coaching question.")


# --- drill-down -----------------------------------------------------------------------


def dashboard_drilldown(filters: DashboardFilters, params) -> tuple:
    """The deals behind one dashboard figure, from the same parameters the figure links with.

    Returns (queryset, list of plain-words descriptions of the filters applied). Unknown
    values give no rows rather than an error; ids outside the user's scope were already
    refused by `dashboard_filters`.
    """
    deals = dashboard_deals(filters)
    said = []
    state = params.get("state")
    if state:
        if state not in DealState.values:
            raise Http404("No such state.")
        deals = deals.filter(state=state)
        said.append(gettext("state %(label)s") % {"label": DealState(state).label})
    left = params.get("left_state")
    if left:
        if left not in OPEN_STATES:
            raise Http404("No such state.")
        ended = DealStay.objects.filter(
            state=left, left_at__gte=filters.start_at, left_at__lt=filters.end_at
        )
        deals = deals.filter(pk__in=ended.values("deal_id"))
        said.append(gettext("left %(label)s in the period") % {"label": DealState(left).label})
    if params.get("open"):
        deals = deals.filter(state__in=OPEN_STATES)
        said.append(gettext("open"))
    if params.get("currency_only"):
        deals = deals.filter(currency=filters.currency)
        said.append(gettext("in %(currency)s") % {"currency": filters.currency})
    closed = params.get("closed")
    if closed in ("won", "lost", "any"):
        states = {
            "won": [DealState.CLOSED_WON],
            "lost": [DealState.CLOSED_LOST],
            "any": [DealState.CLOSED_WON, DealState.CLOSED_LOST],
        }[closed]
        deals = deals.filter(
            state__in=states, closed_at__gte=filters.start_at, closed_at__lt=filters.end_at
        )
        said.append(
            gettext("closed (%(closed)s) %(start)s–%(end)s")
            % {
                "closed": closed,
                "start": format(filters.start, "%d %b %Y"),
                "end": format(filters.end, "%d %b %Y"),
            }
        )
    if "loss_reason" in params:
        deals = deals.filter(loss_reason=params.get("loss_reason") or "")
        label = dict(LossReason.choices).get(params.get("loss_reason"), "not recorded")
        said.append(gettext("loss reason %(label)s") % {"label": label})
    if params.get("stalled"):
        deals = deals.filter(_stalled_q(stage_settings(), timezone.now()))
        said.append(gettext("stalled"))
    month = params.get("month")
    if month:
        deals = deals.filter(state__in=OPEN_STATES)
        if month == "none":
            deals = deals.filter(expected_close_date__isnull=True)
            said.append(gettext("no expected close date"))
        else:
            try:
                first = dt.date.fromisoformat(f"{month}-01")
            except ValueError:
                raise Http404("No such month.") from None
            nxt = (first + dt.timedelta(days=32)).replace(day=1)
            deals = deals.filter(expected_close_date__gte=first, expected_close_date__lt=nxt)
            said.append(
                gettext("expected to close in %(first)s") % {"first": format(first, "%B %Y")}
            )
    category = params.get("category")
    if category:
        found = [states for key, _l, states in FORECAST_CATEGORIES if key == category]
        if not found:
            raise Http404("No such forecast category.")
        deals = deals.filter(state__in=found[0])
        said.append(gettext("forecast category %(value)s") % {"value": category.replace("_", " ")})
    objection = params.get("objection")
    if objection:
        objections = Objection.objects.filter(
            category=objection, raised_at__gte=filters.start_at, raised_at__lt=filters.end_at
        )
        if params.get("objection_status"):
            objections = objections.filter(status=params["objection_status"])
        deals = deals.filter(pk__in=objections.values("deal_id"))
        said.append(
            gettext("%(objection)s objection raised in the period") % {"objection": objection}
        )
    bucket = params.get("contract_age")
    if bucket:
        from contracts.models import ContractVersion

        now = timezone.now()
        contracts = ContractVersion.objects.filter(status__in=CONTRACT_OUT_STATUSES)
        found = [b for b in CONTRACT_AGE_BUCKETS if b[0] == bucket]
        if found:
            _key, label, low, high = found[0]
            contracts = contracts.filter(sent_at__lte=now - dt.timedelta(days=low))
            if high is not None:
                contracts = contracts.filter(sent_at__gt=now - dt.timedelta(days=high + 1))
        elif bucket == "any":
            label = "any age"
        elif bucket == "unknown":
            label = "send date unknown"
            contracts = contracts.filter(sent_at__isnull=True)
        else:
            raise Http404("No such age bucket.")
        deals = deals.filter(state__in=OPEN_STATES, pk__in=contracts.values("deal_id"))
        said.append(gettext("contract out for signature, %(label)s") % {"label": label})
    weak = params.get("weak")
    if weak:
        deals = deals.filter(state__in=OPEN_STATES).filter(_coaching_q(weak)).distinct()
        questions = {key: question for key, question, _help in COACHING_QUESTIONS}
        said.append(gettext("answer “No” to %(weak)s") % {"weak": questions[weak]})
    from .what_works import what_works_drilldown  # what-works and quota drill-downs

    deals, more = what_works_drilldown(deals, filters, params)
    said.extend(more)
    return deals.select_related("owner", "account").order_by("-amount", "pk"), said
