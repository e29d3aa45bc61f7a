"""Dashboard figures on a small hand-built history, checked against hand-computed numbers.

The history is replayed through deals.services while time-machine sets the clock, the
same way the demo seed does. The period under test is March 2026.

    deal        history (all at 10:00 UTC)                                  amount
    A  lost     created 1 Mar, asked 3 Mar, objection 4 Mar, lost 5 Mar (price)  4,000 EUR
    B  won      created 2 Mar, override to won 12 Mar                       20,000 EUR
    C  won      created 1 Mar, asked 2 Mar (yes), override to won 6 Mar     10,000 EUR
    D  reopened created 1 Feb, lost 5 Feb, reopened 10 Mar, asked 13 Mar   10,000 EUR
    E  won      created 1 Feb, override to won 20 Feb (outside the period)   7,000 EUR
    F  open     created 1 Mar, intent spotted, in USD, closes 15 Apr         5,000 USD
    G  open     created 1 Mar, intent spotted, no expected close date        1,000 EUR
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from deals import services
from deals.models import Ask, DealState, Objection, StageSetting
from pipeline import selectors as sel

UTC = dt.UTC


def at(day: dt.date | tuple, hour: int = 10):
    if isinstance(day, tuple):
        day = dt.date(*day)
    return time_machine.travel(dt.datetime.combine(day, dt.time(hour), tzinfo=UTC), tick=False)


def _create(rep, account, title, amount, day, **fields):
    with at(day):
        return services.deal_create(
            by=rep, account=account, title=title, amount=Decimal(amount), **fields
        )


@pytest.fixture
def history(rep, manager, account):
    deals = {}
    a = deals["A"] = _create(rep, account, "A", 4000, (2026, 3, 1))
    with at((2026, 3, 3)):
        services.deal_ask_record(
            deal=a, by=rep, channel="call", statement="Shall we start?", answer=Ask.Answer.YES
        )
    with at((2026, 3, 4)):
        services.objection_raise(deal=a, by=rep, category="price", detail="Too expensive.")
    with at((2026, 3, 5)):
        services.deal_transition(
            deal=a, transition="mark_lost", by=rep, loss_reason="price", reason="Budget."
        )

    b = deals["B"] = _create(rep, account, "B", 20000, (2026, 3, 2))
    with at((2026, 3, 12)):
        services.deal_transition(deal=b, transition="override_won", by=manager, reason="Paper.")

    c = deals["C"] = _create(rep, account, "C", 10000, (2026, 3, 1))
    with at((2026, 3, 2)):
        services.deal_ask_record(
            deal=c, by=rep, channel="call", statement="Go?", answer=Ask.Answer.YES
        )
    with at((2026, 3, 6)):
        services.deal_transition(deal=c, transition="override_won", by=manager, reason="Paper.")

    d = deals["D"] = _create(
        rep, account, "D", 10000, (2026, 2, 1), expected_close_date=dt.date(2026, 3, 20)
    )
    with at((2026, 2, 5)):
        services.deal_transition(
            deal=d, transition="mark_lost", by=rep, loss_reason="timing", reason="Not now."
        )
    with at((2026, 3, 10)):
        services.deal_transition(deal=d, transition="reopen", by=manager, reason="Budget back.")
    with at((2026, 3, 13)):
        services.deal_ask_record(
            deal=d, by=rep, channel="call", statement="Now?", answer=Ask.Answer.YES
        )

    e = deals["E"] = _create(rep, account, "E", 7000, (2026, 2, 1))
    with at((2026, 2, 20)):
        services.deal_transition(deal=e, transition="override_won", by=manager, reason="Paper.")

    deals["F"] = _create(
        rep,
        account,
        "F",
        5000,
        (2026, 3, 1),
        currency="USD",
        expected_close_date=dt.date(2026, 4, 15),
    )
    deals["G"] = _create(rep, account, "G", 1000, (2026, 3, 1))
    return deals


def march(user):
    with at((2026, 4, 1)):
        return sel.dashboard_filters(
            user, {"period": "custom", "start": "2026-03-01", "end": "2026-03-31"}
        )


def test_close_rate_counts_deals_closed_in_the_period_only(history, manager):
    """Two won (B, C) and one lost (A) in March: 2/3; E closed in February is left out, and D's
    February loss no longer counts because it was reopened. Cycle time: (10 + 5) / 2 days."""
    filters = march(manager)
    rate = sel.close_rate(sel.dashboard_deals(filters), filters.start_at, filters.end_at)
    assert (rate["won"], rate["lost"], rate["closed"]) == (2, 1, 3)
    assert rate["rate"] == pytest.approx(2 / 3)
    assert rate["cycle_days"] == pytest.approx(7.5)


def test_weighted_pipeline_is_per_state_and_currency(history, manager):
    """Weighted amount = amount × the state's probability, never summed across currencies."""
    StageSetting.objects.filter(state=DealState.ASKED).update(probability=30)
    filters = march(manager)
    rows = {
        (r["state"], r["currency"]): r for r in sel.pipeline_by_state(sel.dashboard_deals(filters))
    }
    asked = rows[(DealState.ASKED, "EUR")]
    assert (asked["count"], asked["amount"], asked["weighted"]) == (1, 10000, Decimal("3000.00"))
    intent_usd = rows[(DealState.INTENT_SPOTTED, "USD")]
    assert (intent_usd["count"], intent_usd["weighted"]) == (1, Decimal("500.00"))
    intent_eur = rows[(DealState.INTENT_SPOTTED, "EUR")]
    assert (intent_eur["count"], intent_eur["weighted"]) == (1, Decimal("100.00"))
    won = rows[(DealState.CLOSED_WON, "EUR")]
    assert (won["count"], won["amount"], won["weighted"]) == (3, 37000, Decimal("37000.00"))
    assert rows[(DealState.CLOSED_LOST, "EUR")]["weighted"] == 0


def test_time_in_state_adds_up_a_reopened_deals_stays(history, manager):
    """Intent spotted: C 1 d, A 2 d, D 4 + 3 = 7 d (reopened), B 10 d → median 2 d, p75 7 d
    (nearest rank). E's stay ended in February and is not counted. Asked: A 2 d, C 4 d; D is
    still in asked, so its running stay is not counted."""
    filters = march(manager)
    with at((2026, 4, 1)):
        stays = {
            r["state"]: r
            for r in sel.time_in_state(
                sel.dashboard_deals(filters), filters.start_at, filters.end_at
            )
        }
    intent = stays[DealState.INTENT_SPOTTED]
    assert intent["deals"] == 4
    assert intent["median_days"] == pytest.approx(2)
    assert intent["p75_days"] == pytest.approx(7)
    asked = stays[DealState.ASKED]
    assert asked["deals"] == 2
    assert asked["median_days"] == pytest.approx(2)
    assert asked["p75_days"] == pytest.approx(4)
    assert stays[DealState.NEGOTIATING]["deals"] == 0
    assert stays[DealState.FOLLOW_UP]["deals"] == 0
    assert stays[DealState.FOLLOW_UP]["median_days"] is None


def test_forecast_buckets_open_deals_by_month_category_and_currency(history, manager):
    """D (asked, best case) closes in March in EUR; F (pipeline) in April in USD; G has no
    date. Closed deals are not forecast."""
    filters = march(manager)
    rows = [
        (r["month"], r["category"], r["currency"], r["count"], r["amount"])
        for r in sel.forecast_by_month(sel.dashboard_deals(filters))
    ]
    assert rows == [
        (dt.date(2026, 3, 1), "best_case", "EUR", 1, 10000),
        (dt.date(2026, 4, 1), "pipeline", "USD", 1, 5000),
        (None, "pipeline", "EUR", 1, 1000),
    ]


def test_loss_reasons_count_deals_lost_in_the_period(history, manager):
    """Only A was lost in March (price); D's February loss was cleared when it reopened."""
    filters = march(manager)
    rows = sel.loss_reasons(sel.dashboard_deals(filters), filters.start_at, filters.end_at)
    assert [(r["loss_reason"], r["count"], r["label"]) for r in rows] == [("price", 1, "Price")]


def test_asks_per_won_deal(history, manager):
    """B was won with no ask and C with one: 0.5 asks per won deal."""
    filters = march(manager)
    asks = sel.asks_per_won_deal(sel.dashboard_deals(filters), filters.start_at, filters.end_at)
    assert asks == {"won": 2, "asks": 1, "per_deal": 0.5}


def test_objections_by_category_and_how_often_resolved(history, manager, rep):
    """A's price objection stays open; a second one on G is resolved: 2 raised, 1 resolved."""
    with at((2026, 3, 20)):
        objection = services.objection_raise(
            deal=history["G"], by=rep, category="price", detail="Discount?"
        )
        services.objection_resolve(objection=objection, by=rep, resolution="Annual billing.")
    filters = march(manager)
    rows = sel.objections_by_category(
        sel.dashboard_deals(filters), filters.start_at, filters.end_at
    )
    assert [(r["category"], r["count"], r["resolved"], r["open"]) for r in rows] == [
        ("price", 2, 1, 1)
    ]
    assert rows[0]["resolved_rate"] == 0.5


def test_no_deals_gives_empty_figures_not_errors(other_manager):
    """A team without deals: zero counts and no rates, never a division by zero."""
    filters = march(other_manager)
    deals = sel.dashboard_deals(filters)
    assert sel.pipeline_by_state(deals) == []
    assert sel.forecast_by_month(deals) == []
    assert sel.close_rate(deals, filters.start_at, filters.end_at) == {
        "won": 0,
        "lost": 0,
        "closed": 0,
        "rate": None,
        "cycle_days": None,
    }
    assert sel.asks_per_won_deal(deals, filters.start_at, filters.end_at)["per_deal"] is None
    assert sel.loss_reasons(deals, filters.start_at, filters.end_at) == []
    assert all(r["deals"] == 0 for r in sel.time_in_state(deals, filters.start_at, filters.end_at))
    assert all(r["count"] == 0 for r in sel.stalled_by_state(deals))
    assert all(r["count"] == 0 for r in sel.contracts_out_by_age(deals))
    assert sel.reps_side_by_side(deals, filters.start_at, filters.end_at, "USD") == []


def test_stalled_deals_use_each_states_threshold(rep, manager, account, make_deal):
    """Intent spotted stalls after 14 days without activity: 15 days stalls, 13 does not."""
    StageSetting.objects.filter(state=DealState.INTENT_SPOTTED).update(stall_after_days=14)
    now = timezone.now()
    with time_machine.travel(now - dt.timedelta(days=15), tick=False):
        stale = make_deal(title="Stale")
    with time_machine.travel(now - dt.timedelta(days=13), tick=False):
        make_deal(title="Fresh")
    filters = sel.dashboard_filters(manager, {})
    rows = {r["state"]: r["count"] for r in sel.stalled_by_state(sel.dashboard_deals(filters))}
    assert rows[DealState.INTENT_SPOTTED] == 1
    deals, _said = sel.dashboard_drilldown(filters, {"stalled": "1"})
    assert list(deals) == [stale]


def test_contracts_out_by_age_bucket(rep, manager, deal):
    """A contract sent ten days ago and still unsigned is in the 8–14 days bucket; a signed one
    is not out for signature any more."""
    from contracts.models import ContractVersion

    now = timezone.now()
    ContractVersion.objects.create(
        deal=deal, number=1, status="viewed", sent_at=now - dt.timedelta(days=10)
    )
    ContractVersion.objects.create(
        deal=deal, number=2, status="completed", sent_at=now - dt.timedelta(days=1)
    )
    filters = sel.dashboard_filters(manager, {})
    rows = {r["bucket"]: r["count"] for r in sel.contracts_out_by_age(sel.dashboard_deals(filters))}
    assert rows == {"0_2": 0, "3_7": 0, "8_14": 1, "15_30": 0, "31_": 0}
    deals, _said = sel.dashboard_drilldown(filters, {"contract_age": "8_14"})
    assert list(deals) == [deal]


def test_reps_side_by_side_amounts_in_the_chosen_currency(history, manager, rep):
    """The rep's open EUR amount is D + G; F in USD is counted apart, never added."""
    filters = march(manager)
    with at((2026, 4, 1)):
        rows = sel.reps_side_by_side(
            sel.dashboard_deals(filters), filters.start_at, filters.end_at, "EUR"
        )
    assert len(rows) == 1
    row = rows[0]
    assert row["owner"] == rep.pk
    assert (row["open"], row["open_amount"], row["other_currency"]) == (3, 11000, 1)
    # D asked 25% of 10,000 + G intent 10% of 1,000
    assert row["weighted"] == Decimal("2600.00")
    assert (row["won"], row["lost"], row["won_amount"]) == (2, 1, 30000)
    assert row["rate"] == pytest.approx(2 / 3)
    assert row["asks"] == 3  # A on 3 Mar, C on 2 Mar, D on 13 Mar


def test_coaching_answers_come_from_the_record(rep, manager, deal, contact):
    """A fresh deal answers no to every question; recording the answers turns them to yes."""
    filters = sel.dashboard_filters(manager, {})
    row = sel.coaching_deals(sel.dashboard_deals(filters)).get()
    assert (row.q_needs, row.q_value, row.q_objections, row.q_ask, row.q_signer) == (
        False,
        False,
        True,
        False,
        False,
    )
    services.deal_readiness_set(
        deal=deal, by=rep, items={"ready_needs_understood": True, "ready_value_established": True}
    )
    services.stakeholder_add(deal=deal, by=rep, contact=contact, role="signer")
    services.deal_ask_record(
        deal=deal,
        by=rep,
        channel="call",
        statement="Shall we?",
        answer=Ask.Answer.NOT_YET,
        objection={"category": "price", "detail": "Budget."},
    )
    row = sel.coaching_deals(sel.dashboard_deals(filters)).get()
    assert (row.q_needs, row.q_value, row.q_objections, row.q_ask, row.q_signer) == (
        True,
        True,
        False,
        True,
        True,
    )
    assert row.coaching_score == 4
    weak, _said = sel.dashboard_drilldown(filters, {"weak": "objections"})
    assert list(weak) == [deal]
    objection = deal.objections.get(status=Objection.Status.OPEN)
    services.objection_resolve(objection=objection, by=rep, resolution="Quarterly billing.")
    assert sel.coaching_deals(sel.dashboard_deals(filters)).get().coaching_score == 5


def test_time_in_state_links_to_the_deals_that_left_the_state(history, manager):
    """The drill-down behind “asked” lists the deals whose stay in asked ended in the period."""
    filters = march(manager)
    with at((2026, 4, 1)):
        deals, said = sel.dashboard_drilldown(filters, {"left_state": DealState.ASKED})
        assert {d.title for d in deals} == {"A", "C"}
    assert said == ["left Asked in the period"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ("90d", dt.date(2026, 1, 1), dt.date(2026, 3, 31))),
        ({"period": "30d"}, ("30d", dt.date(2026, 3, 2), dt.date(2026, 3, 31))),
        ({"period": "quarter"}, ("quarter", dt.date(2026, 1, 1), dt.date(2026, 3, 31))),
        ({"period": "year"}, ("year", dt.date(2026, 1, 1), dt.date(2026, 3, 31))),
        (
            {"period": "year", "start": "2026-01-01", "end": "2026-03-31"},
            ("year", dt.date(2026, 1, 1), dt.date(2026, 3, 31)),
        ),
        (
            {"period": "90d", "start": "2025-12-01", "end": "2025-12-31"},
            ("custom", dt.date(2025, 12, 1), dt.date(2025, 12, 31)),
        ),
        (
            {"period": "custom", "start": "2026-03-31", "end": "2026-03-01"},
            ("90d", dt.date(2026, 1, 1), dt.date(2026, 3, 31)),
        ),
        (
            {"period": "custom", "start": "nonsense"},
            ("90d", dt.date(2026, 1, 1), dt.date(2026, 3, 31)),
        ),
    ],
)
def test_period_filter(manager, params, expected):
    """Named periods end today; edited dates make a custom period; bad dates fall back."""
    with at((2026, 3, 31)):
        filters = sel.dashboard_filters(manager, params)
    assert (filters.period, filters.start, filters.end) == expected
