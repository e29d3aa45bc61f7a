"""A rep's day without friction (issue 15): formats, dates, grouped readiness, audit titles."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from deals import services
from deals.models import DealEvent
from deals.templatetags.crm_format import day_text, money_text, when


@pytest.fixture
def rep_client(client, rep):
    client.force_login(rep)
    return client


def test_money_has_one_format():
    """Thousands separators, cents only when there are any, then the currency code."""
    assert money_text(Decimal("120000"), "EUR") == "120,000 EUR"
    assert money_text(Decimal("1250.5"), "USD") == "1,250.50 USD"
    assert money_text("240,000.00", "EUR") == "240,000 EUR"


def test_dates_show_their_year_unless_it_is_this_one():
    today = timezone.localdate()
    assert day_text(today.replace(month=12, day=13)) == "13 Dec"
    assert day_text(dt.date(2019, 3, 3)) == "3 Mar 2019"


def test_times_are_labelled_with_the_users_zone():
    """A moment is shown in the active zone with its abbreviation."""
    moment = dt.datetime(2026, 11, 4, 15, 43, tzinfo=dt.UTC)
    with timezone.override("Europe/Berlin"):
        assert when(moment) == "4 Nov, 16:43 CET"


def test_a_run_of_readiness_ticks_is_one_timeline_entry(rep_client, deal, rep):
    """Ticking three boxes one after the other reads as one entry saying what changed."""
    for field in ("ready_needs_understood", "ready_solution_fits", "ready_budget_timing"):
        services.deal_readiness_set(deal=deal, by=rep, items={field: True})
    assert deal.events.filter(kind=DealEvent.Kind.READINESS).count() == 3
    response = rep_client.get(deal.get_absolute_url())
    readiness = [e for e in response.context["events"] if e.kind == DealEvent.Kind.READINESS]
    assert len(readiness) == 1
    assert readiness[0].reason == (
        "Readiness 3/6: ticked needs understood, solution fits, budget and timing confirmed."
    )


def test_audit_titles_use_the_state_names_people_read(deal, rep):
    services.deal_transition(deal=deal, transition="ask", by=rep)
    event = deal.events.get(kind=DealEvent.Kind.TRANSITION)
    assert str(event) == "Intent spotted → Asked"


def test_a_new_deal_refuses_past_dates_an_edit_keeps_them_with_a_warning(rep_client, deal, account):
    """2019 for a new deal is refused in plain words; on an edit it is saved and flagged."""
    response = rep_client.post(
        reverse("deals:deal_create"),
        {
            "title": "Typo",
            "account": account.pk,
            "amount": "1000",
            "currency": "EUR",
            "expected_close_date": "2019-03-03",
            "term_months": 12,
            "billing": "annually",
        },
    )
    assert response.status_code == 200
    assert "3 Mar 2019 is in the past" in response.content.decode()
    assert not account.deals.filter(title="Typo").exists()

    with time_machine.travel(dt.datetime(2026, 11, 30, 10, tzinfo=dt.UTC), tick=False):
        response = rep_client.post(
            reverse("deals:deal_edit", args=[deal.pk]),
            {
                "title": deal.title,
                "amount": "12000",
                "currency": "EUR",
                "expected_close_date": "2020-02-01",
                "term_months": 12,
                "billing": "annually",
            },
            follow=True,
        )
    body = response.content.decode()
    assert "The expected close (1 Feb 2020) is in the past." in body
    deal.refresh_from_db()
    assert deal.expected_close_date == dt.date(2020, 2, 1)


def test_a_new_deal_needs_an_amount_and_is_told_the_largest(rep_client, account):
    url = reverse("deals:deal_create")
    data = {"title": "X", "account": account.pk, "currency": "EUR", "term_months": 12}
    body = rep_client.post(url, {**data, "amount": "0", "billing": "annually"}).content.decode()
    assert "more than 0" in body
    body = rep_client.post(
        url, {**data, "amount": "1000000000000000", "billing": "annually"}
    ).content.decode()
    assert "largest amount a deal can hold (999,999,999,999.99)" in body
