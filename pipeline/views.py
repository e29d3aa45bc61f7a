"""Manager dashboards: pipeline analytics, coaching view, drill-down lists and CSV exports.

Thin views: every figure comes from pipeline.selectors (the same functions feed the
CSV exports); charts are drawn server-side by pipeline.charts.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.template.defaultfilters import date as date_filter
from django.template.defaultfilters import floatformat
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.http import urlencode
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.http import require_GET

from closing_crm.replica import reads_from_replica
from deals.csv_export import csv_lines
from deals.models import OPEN_STATES, Currency, DealState
from deals.pagination import DeferredJoinPaginator
from deals.presenters import state_labels, url_for_pk

from . import charts
from . import selectors as sel
from .quotas import quota_attainment
from .snapshots import dashboard_snapshot
from .what_works import what_works

CURRENCY_NOTE = gettext_lazy(
    "Amounts are shown per currency and never converted: a figure in EUR counts only the "
    "deals in EUR. Pick the currency the charts use; deal counts always include every currency."
)
PERIOD_NOTE = gettext_lazy(
    "The period applies to closed deals (close rate, cycle time, asks per won deal, loss "
    "reasons), to objections raised and to stays in a state that ended in it; pipeline, "
    "forecast, stalled deals and contracts out are today's open deals."
)


def _money(amount, currency: str = "") -> str:
    # The active language's thousands separator (chart texts only; CSV figures stay plain).
    text = number_format(
        Decimal(amount).quantize(Decimal(1)), 0, use_l10n=True, force_grouping=True
    )
    return f"{text} {currency}".strip()


def _pct(value) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def _days(value) -> str:
    return "—" if value is None else f"{value:.1f} d"


def _drill(filters: sel.DashboardFilters, **extra) -> str:
    return reverse("pipeline:dashboard_deals") + "?" + urlencode(filters.params(**extra))


def _figures(filters: sel.DashboardFilters, only: set[str] | None = None) -> dict:
    """The dashboard figures for these filters (all, or the ones named in `only`), each
    row with the link to the deals behind it."""
    deals = sel.dashboard_deals(filters)
    # Figures over every deal in scope read the running totals (a few hundred rows).
    totals = sel.dashboard_totals(filters)
    start, end, cur = filters.start_at, filters.end_at, filters.currency
    figures: dict = {}

    def want(name: str) -> bool:
        return only is None or name in only

    settings = sel.stage_settings() if want("stalled") or want("reps") else None
    if want("pipeline"):
        pipeline = sel.pipeline_by_state(totals)
        counts: dict[str, int] = {}
        for row in pipeline:
            row["href"] = _drill(
                filters, state=row["state"], currency=row["currency"], currency_only=1
            )
            counts[row["state"]] = counts.get(row["state"], 0) + row["count"]
        figures.update(pipeline=pipeline, state_counts=counts)
    if want("forecast"):
        labels = {key: label for key, label, _states in sel.FORECAST_CATEGORIES}
        forecast = sel.forecast_by_month(deals)
        for row in forecast:
            month = row["month"].strftime("%Y-%m") if row["month"] else "none"
            row["month_key"] = month
            row["category_label"] = labels[row["category"]]
            row["href"] = _drill(
                filters,
                month=month,
                category=row["category"],
                currency=row["currency"],
                currency_only=1,
            )
        figures["forecast"] = forecast
    if want("rate"):
        figures["rate"] = sel.close_rate(deals, start, end)
    if want("asks"):
        figures["asks"] = sel.asks_per_won_deal(deals, start, end)
    if want("losses"):
        losses = sel.loss_reasons(deals, start, end)
        for row in losses:
            row["href"] = (
                _drill(filters, closed="lost")
                + "&"
                + urlencode({"loss_reason": row["loss_reason"]})
            )
        figures["losses"] = losses
    if want("objections"):
        objections = sel.objections_by_category(deals, start, end)
        for row in objections:
            row["href"] = _drill(filters, objection=row["category"])
            row["resolved_href"] = _drill(
                filters, objection=row["category"], objection_status="resolved"
            )
        figures["objections"] = objections
    if want("stalled"):
        stalled = sel.stalled_by_state(deals, settings, totals=totals)
        for row in stalled:
            row["href"] = _drill(filters, stalled=1, state=row["state"])
        figures.update(stalled=stalled, stalled_total=sum(r["count"] for r in stalled))
    if want("contracts"):
        contracts = sel.contracts_out_by_age(deals)
        for row in contracts:
            row["href"] = _drill(filters, contract_age=row["bucket"])
        figures.update(contracts=contracts, contracts_total=sum(r["count"] for r in contracts))
    if want("stays"):
        stays = sel.time_in_state(deals, start, end)
        for row in stays:
            row["href"] = _drill(filters, left_state=row["state"])
        figures["stays"] = stays
    if want("reps"):
        reps = sel.reps_side_by_side(deals, start, end, cur, settings, totals=totals)
        for row in reps:
            row["href"] = _drill(filters, rep=row["owner"], open=1)
            row["won_href"] = _drill(filters, rep=row["owner"], closed="won")
            row["lost_href"] = _drill(filters, rep=row["owner"], closed="lost")
            row["stalled_href"] = _drill(filters, rep=row["owner"], stalled=1)
        figures["reps"] = reps
    if want("won"):
        figures["won"] = sel.won_amounts(deals, start, end)
    return figures


def _charts(filters: sel.DashboardFilters, figures: dict) -> dict:
    cur = filters.currency
    funnel = charts.funnel_chart(
        [
            charts.Bar(
                DealState(state).label,
                figures["state_counts"].get(state, 0),
                href=_drill(filters, state=state),
            )
            for state in [*OPEN_STATES, DealState.CLOSED_WON]
        ],
        title=gettext("Deals per state (count, all currencies)"),
    )
    categories = [label for _k, label, _s in sel.FORECAST_CATEGORIES]
    label_of = {key: label for key, label, _s in sel.FORECAST_CATEGORIES}
    months: dict = {}
    for row in figures["forecast"]:
        if row["currency"] != cur:
            continue
        label = date_format(row["month"], "M Y") if row["month"] else gettext("No date")
        months.setdefault((row["month"] is None, row["month"]), (label, []))[1].append(
            charts.Segment(
                label_of[row["category"]],
                float(row["amount"]),
                text=_money(row["amount"]),
                href=row["href"],
            )
        )
    forecast = charts.stacked_bar_chart(
        [months[key] for key in sorted(months, key=lambda k: (k[0], k[1] or 0))][-12:],
        series=categories,
        title=gettext("Forecast by expected close month (%(cur)s), stacked by category")
        % {"cur": cur},
        value_text=lambda v: _money(v),
    )
    reps = charts.stacked_bar_chart(
        [
            (
                row["name"],
                [
                    charts.Segment(gettext("Won"), row["won"], href=row["won_href"]),
                    charts.Segment(gettext("Lost"), row["lost"], href=row["lost_href"]),
                    charts.Segment(gettext("Open"), row["open"], href=row["href"]),
                ],
            )
            for row in figures["reps"][:20]
        ],
        series=[gettext("Won"), gettext("Lost"), gettext("Open")],
        title=gettext("Deals per rep: won and lost in the period, open now"),
    )
    losses = charts.bar_chart(
        [charts.Bar(r["label"], r["count"], href=r["href"]) for r in figures["losses"]],
        title=gettext("Loss reasons (deals lost in the period)"),
    )
    contracts = charts.bar_chart(
        [charts.Bar(r["label"], r["count"], href=r["href"]) for r in figures["contracts"]],
        title=gettext("Contracts out for signature by age"),
    )
    return {
        "funnel": funnel,
        "forecast": forecast,
        "reps": reps,
        "losses": losses,
        "contracts": contracts,
    }


def _context(request, filters: sel.DashboardFilters, **extra) -> dict:
    return {
        "filters": filters,
        "periods": sel.PERIODS,
        "currencies": Currency.choices,
        "currency_note": CURRENCY_NOTE,
        "period_note": PERIOD_NOTE,
        "query": urlencode(filters.params()),
        **extra,
    }


@require_GET
@login_required
@reads_from_replica
def dashboard(request):
    filters = sel.dashboard_filters(request.user, request.GET)

    def figures_html() -> str:
        figures = _figures(filters)
        return render_to_string(
            "pipeline/_dashboard_figures.html",
            _context(
                request,
                filters,
                f=figures,
                charts=_charts(filters, figures),
                categories=[
                    (key, label, ", ".join(str(DealState(state).label) for state in states))
                    for key, label, states in sel.FORECAST_CATEGORIES
                ],
                quota=quota_attainment(filters),
            ),
            request=request,
        )

    snapshot = dashboard_snapshot(request, "dashboard", filters, figures_html)
    return render(
        request,
        "pipeline/dashboard.html",
        _context(request, filters, figures_html=mark_safe(snapshot.content), snapshot=snapshot),  # noqa: S308 (rendered by Django's escaping templates)
    )


@require_GET
@login_required
@reads_from_replica
def coaching(request):
    filters = sel.dashboard_filters(request.user, request.GET)
    page_number = request.GET.get("page", "1")

    def figures_html() -> str:
        page = sel.coaching_page(sel.dashboard_deals(filters), page_number)
        rows = []
        for deal in page.object_list:
            answers = [
                (key, question, getattr(deal, f"q_{key}"))
                for key, question, _h in sel.COACHING_QUESTIONS
            ]
            rows.append({"deal": deal, "answers": answers})
        weak = [
            (key, question, help_text, _drill(filters, weak=key))
            for key, question, help_text in sel.COACHING_QUESTIONS
        ]
        return render_to_string(
            "pipeline/_coaching_figures.html",
            _context(
                request, filters, page=page, rows=rows, questions=weak, works=what_works(filters)
            ),
            request=request,
        )

    snapshot = dashboard_snapshot(request, f"coaching:{page_number}", filters, figures_html)
    return render(
        request,
        "pipeline/coaching.html",
        _context(request, filters, figures_html=mark_safe(snapshot.content), snapshot=snapshot),  # noqa: S308 (rendered by Django's escaping templates)
    )


@require_GET
@login_required
@reads_from_replica
def drilldown(request):
    filters = sel.dashboard_filters(request.user, request.GET)
    deals, said = sel.dashboard_drilldown(filters, request.GET)
    deals = deals.only(*DRILLDOWN_ROW_FIELDS)
    page = DeferredJoinPaginator(deals, 50).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        "pipeline/deals.html",
        _context(
            request,
            filters,
            page=page,
            rows=_drilldown_rows(page),
            said=said,
            page_query=params.urlencode(),
        ),
    )


#: What `_drilldown_rows` reads of each deal (for `QuerySet.only`; see DEAL_LIST_ROW_FIELDS).
DRILLDOWN_ROW_FIELDS = (
    "title",
    "account__name",
    "owner__username",
    "owner__first_name",
    "owner__last_name",
    "state",
    "amount",
    "currency",
    "expected_close_date",
    "last_activity_at",
    "closed_at",
)


def _drilldown_rows(deals) -> list[dict]:
    """What each drill-down row prints, with the URL pattern, the state labels and the date
    format looked up once for the page rather than in the template for every row."""
    deal_url = url_for_pk("deals:deal_detail")
    labels = state_labels()
    day_format = gettext("j M Y")
    ago = gettext("%(last_activity_at)s ago")

    def day(value) -> str:
        if not value:
            return "—"
        if isinstance(value, dt.datetime) and timezone.is_aware(value):
            value = timezone.localtime(value)
        return date_filter(value, day_format) or "—"

    return [
        {
            "deal": deal,
            "url": deal_url(deal.pk),
            "owner": str(deal.owner),
            "state_label": labels.get(deal.state, deal.state),
            "amount": floatformat(deal.amount, "0g"),
            "close": day(deal.expected_close_date),
            "activity_ago": ago % {"last_activity_at": timesince(deal.last_activity_at)},
            "closed": day(deal.closed_at),
        }
        for deal in deals
    ]


# --- CSV ---------------------------------------------------------------------------


def _amount(value) -> str:
    """Money in CSV: always two decimals, whatever the database returns."""
    return f"{Decimal(value):.2f}"


def _csv_pipeline(filters, f):
    yield ["state", "currency", "deals", "amount", "probability_percent", "weighted_amount"]
    for r in f["pipeline"]:
        yield [
            r["state"],
            r["currency"],
            r["count"],
            _amount(r["amount"]),
            r["probability"],
            _amount(r["weighted"]),
        ]


def _csv_forecast(filters, f):
    yield ["expected_close_month", "category", "currency", "deals", "amount"]
    for r in f["forecast"]:
        yield [r["month_key"], r["category"], r["currency"], r["count"], _amount(r["amount"])]


def _csv_close_rate(filters, f):
    r = f["rate"]
    yield ["period_start", "period_end", "won", "lost", "close_rate", "avg_cycle_days"]
    yield [
        filters.start,
        filters.end,
        r["won"],
        r["lost"],
        "" if r["rate"] is None else f"{r['rate']:.4f}",
        "" if r["cycle_days"] is None else f"{r['cycle_days']:.2f}",
    ]


def _csv_time_in_state(filters, f):
    yield ["state", "deals", "median_days", "p75_days", "mean_days"]
    for r in f["stays"]:
        yield [
            r["state"],
            r["deals"],
            *(
                "" if r[k] is None else f"{r[k]:.2f}"
                for k in ("median_days", "p75_days", "mean_days")
            ),
        ]


def _csv_stalled(filters, f):
    yield ["state", "stall_after_days", "stalled_deals"]
    for r in f["stalled"]:
        yield [r["state"], r["stall_after_days"], r["count"]]


def _csv_asks(filters, f):
    r = f["asks"]
    yield ["won_deals", "asks", "asks_per_won_deal"]
    yield [r["won"], r["asks"], "" if r["per_deal"] is None else f"{r['per_deal']:.2f}"]


def _csv_objections(filters, f):
    yield ["category", "raised", "resolved", "open", "accepted_loss", "stalls", "resolved_rate"]
    for r in f["objections"]:
        yield [
            r["category"],
            r["count"],
            r["resolved"],
            r["open"],
            r["accepted_loss"],
            r["stalls"],
            f"{r['resolved_rate']:.4f}",
        ]


def _csv_losses(filters, f):
    yield ["loss_reason", "deals"]
    for r in f["losses"]:
        yield [r["loss_reason"] or "not_recorded", r["count"]]


def _csv_contracts(filters, f):
    yield ["age_bucket", "contracts"]
    for r in f["contracts"]:
        yield [r["label"], r["count"]]


def _csv_reps(filters, f):
    yield [
        "rep",
        "open_deals",
        f"open_amount_{filters.currency}",
        f"weighted_{filters.currency}",
        "open_in_other_currencies",
        "won",
        f"won_amount_{filters.currency}",
        "lost",
        "close_rate",
        "stalled",
        "asks",
    ]
    for r in f["reps"]:
        yield [
            r["name"],
            r["open"],
            _amount(r["open_amount"]),
            _amount(r["weighted"]),
            r["other_currency"],
            r["won"],
            _amount(r["won_amount"]),
            r["lost"],
            "" if r["rate"] is None else f"{r['rate']:.4f}",
            r["stalled"],
            r["asks"],
        ]


#: CSV name → (the figure it needs, the row writer).
CSV_FIGURES = {
    "pipeline": ("pipeline", _csv_pipeline),
    "forecast": ("forecast", _csv_forecast),
    "close-rate": ("rate", _csv_close_rate),
    "time-in-state": ("stays", _csv_time_in_state),
    "stalled": ("stalled", _csv_stalled),
    "asks": ("asks", _csv_asks),
    "objections": ("objections", _csv_objections),
    "loss-reasons": ("losses", _csv_losses),
    "contracts-out": ("contracts", _csv_contracts),
    "reps": ("reps", _csv_reps),
}


@require_GET
@login_required
@reads_from_replica
def figure_csv(request, figure: str):
    if figure not in CSV_FIGURES:
        raise Http404("No such figure.")
    needs, writer_for = CSV_FIGURES[figure]
    filters = sel.dashboard_filters(request.user, request.GET)

    def csv_text() -> str:
        return "".join(csv_lines(writer_for(filters, _figures(filters, only={needs}))))

    snapshot = dashboard_snapshot(request, f"csv:{figure}", filters, csv_text)
    response = HttpResponse(snapshot.content, content_type="text/csv; charset=utf-8")
    name = f"{figure}_{filters.start:%Y%m%d}-{filters.end:%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
