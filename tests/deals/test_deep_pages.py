"""Deep pages of the deal list and the drill-down: the deferred join gives exactly the rows,
in exactly the order, that the plain OFFSET slice of the same list gives."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from deals import services
from deals.models import Ask, Deal, DealState, StageSetting
from deals.pagination import DeferredJoinPaginator
from deals.selectors import DEAL_LIST_SORTS, deals_filtered
from pipeline import selectors as sel
from tests.conftest import record_ask

pytestmark = pytest.mark.django_db

FILTERS = [
    {},
    {"state": "open"},
    {"state": DealState.ASKED},
    {"owner": "me"},
    {"q": "north"},
    {"close": "2031-03"},
]


@pytest.fixture
def many_deals(rep, teammate, account):
    """17 deals with ties on every sort column (amount, close date, title, account, state,
    last activity) and some without a close date, so only the id breaks the ties."""
    other = services.account_create(by=rep, team=rep.team, name="Beta AG")
    north = services.account_create(by=rep, team=rep.team, name="Northwind")
    accounts = [account, other, north]
    moment = timezone.now() - dt.timedelta(days=40)
    deals = []
    for i in range(17):
        owner = rep if i % 3 else teammate
        closes = [None, dt.date(2031, 3, 10), dt.date(2031, 3, 10), dt.date(2031, 4, 1)][i % 4]
        with time_machine.travel(moment + dt.timedelta(days=i % 2), tick=False):
            deal = services.deal_create(
                by=owner,
                owner=owner,
                account=accounts[i % 3],
                title=["Renewal", "Pilot", "Renewal north"][i % 3],
                amount=Decimal([500, 1000, 1000, 2500][i % 4]),
                expected_close_date=closes,
            )
            if i % 2:
                record_ask(deal, owner)
        deals.append(deal)
    return deals


def all_pages(queryset, per_page: int) -> list[list[int]]:
    paginator = DeferredJoinPaginator(queryset, per_page)
    return [[d.pk for d in paginator.page(n)] for n in paginator.page_range]


def offset_pages(queryset, per_page: int) -> list[list[int]]:
    count = queryset.count()
    return [
        [d.pk for d in queryset[bottom : bottom + per_page]] for bottom in range(0, count, per_page)
    ]


def test_deal_list_pages_equal_the_offset_slices(many_deals, rep):
    """Every page, for every sort and a range of filters, lists what OFFSET lists (one set-up
    for the whole matrix: building the deals is the slow part)."""
    for params in FILTERS:
        for sort in DEAL_LIST_SORTS:
            deals = deals_filtered(rep, {**params, "sort": sort})
            expected = offset_pages(deals, 4)
            assert all_pages(deals, 4) == expected, (params, sort)
    assert len(sum(offset_pages(deals_filtered(rep, {}), 4), [])) == len(many_deals)


def test_the_page_reads_ids_by_offset_and_then_its_rows(many_deals, client, rep):
    """The deal list reads two deal queries (the count, and the page with the offset in
    a subquery of ids), the same rows as the plain slice, with their account and owner."""
    client.force_login(rep)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("deals:deal_list"), {"sort": "-amount", "page": 1})
    page = response.context["page"]
    assert [d.pk for d in page] == [d.pk for d in deals_filtered(rep, {"sort": "-amount"})[:25]]
    deal_reads = [q["sql"] for q in captured.captured_queries if 'FROM "deals_deal"' in q["sql"]]
    page_sql = [sql for sql in deal_reads if "COUNT(*)" not in sql]
    assert len(page_sql) == 1
    assert "IN (SELECT" in page_sql[0]


def test_drilldown_pages_equal_the_offset_slices(many_deals, manager):
    """The drill-downs (ordered by amount, many ties; some distinct over a join) page like
    their OFFSET slices."""
    StageSetting.objects.update(stall_after_days=10)
    for deal in many_deals[::3]:  # two open objections each: the join repeats them (distinct)
        for detail in ("Budget.", "Timing."):
            services.deal_ask_record(
                deal=deal,
                by=deal.owner,
                channel="call",
                statement="Shall we start?",
                answer=Ask.Answer.NOT_YET,
                objection={"category": "price", "detail": detail},
            )
    filters = sel.dashboard_filters(manager, {})
    drilldowns = [{"stalled": "1"}, {"open": "1"}, {"state": DealState.ASKED}, {}]
    for params in [*drilldowns, {"weak": "objections"}, {"weak": "signer"}]:
        deals, _said = sel.dashboard_drilldown(filters, params)
        expected = offset_pages(deals, 3)
        assert all_pages(deals, 3) == expected, params
    weak, _said = sel.dashboard_drilldown(filters, {"weak": "objections"})
    assert weak.count() == len(many_deals[::3])


def test_a_page_past_the_end_shows_the_last_one(many_deals, client, rep):
    """Asking for page 99 of 1 shows page 1 (as Django's get_page does), not an error."""
    client.force_login(rep)
    response = client.get(reverse("deals:deal_list"), {"page": 99})
    page = response.context["page"]
    assert page.number == 1
    assert [d.pk for d in page] == [d.pk for d in deals_filtered(rep, {})]
    assert Deal.objects.count() == len(many_deals)
