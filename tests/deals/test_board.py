"""The pipeline board's cards (rendered in Python) and its totals (read from the running
totals): the same figures as the live aggregate for every filter, and the card's HTML."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from deals import services
from deals.models import OPEN_STATES, Deal
from deals.selectors import board_columns, board_totals, deals_filtered
from pipeline.selectors import pipeline_by_state

pytestmark = pytest.mark.django_db


def _figures(columns):
    return {
        (c["state"], t["currency"], t["count"], t["amount"]) for c in columns for t in c["totals"]
    }


@pytest.mark.parametrize(
    "who, params",
    [
        ("rep", {}),
        ("rep", {"owner": "me"}),
        ("manager", {}),
        ("manager", {"owner": "teammate"}),
        ("admin_user", {}),
        ("admin_user", {"team": "other"}),
        ("admin_user", {"team": "other", "owner": "me"}),
    ],
)
def test_board_totals_from_running_totals_equal_the_live_aggregate(
    request, who, params, rep, teammate, other_rep, make_deal, team, other_team
):
    """With the owner and team filters the board reads deals.DealTotal; its figures are
    those of aggregating the same filtered deals, state by state and currency by currency."""
    make_deal(title="A", amount=Decimal("1000"))
    make_deal(title="B", amount=Decimal("2500"), currency="USD")
    make_deal(by=teammate, owner=teammate, title="C", amount=Decimal("700"))
    other_account = services.account_create(by=other_rep, team=other_team, name="Other AG")
    services.deal_create(by=other_rep, account=other_account, title="D", amount=Decimal("90"))
    services.deal_archive(deal=make_deal(title="Archived"), by=rep, reason="dupe")
    user = request.getfixturevalue(who)
    values = {"teammate": str(teammate.pk), "other": str(other_team.pk)}
    params = {k: values.get(v, v) for k, v in params.items()}
    totals = board_totals(user, params)
    assert totals is not None
    deals = deals_filtered(user, params)
    assert _figures(board_columns(deals, totals=totals)) == _figures(board_columns(deals))
    live = {(r["state"], r["currency"], r["count"]) for r in pipeline_by_state(deals, OPEN_STATES)}
    assert {(s, c, n) for s, c, n, _a in _figures(board_columns(deals, totals=totals))} == live


def test_board_with_a_close_month_aggregates_its_deals(rep):
    """The running totals know no close month: with that filter the board aggregates."""
    assert board_totals(rep, {"close": "2030-11"}) is None
    assert board_totals(rep, {"close": "not a month"}) is not None


def test_board_card_escapes_and_says_everything(client, rep, teammate, make_deal):
    """A card shows title, account, owner (others' deals), amount, days in state, next
    step, close date and the move menu; text a rep typed is escaped."""
    deal = make_deal(
        by=teammate,
        owner=teammate,
        title="<script>alert(1)</script> Big deal",
        amount=Decimal("12500"),
        next_step="Call <b>Anna</b>",
        next_step_due=timezone.localdate() - dt.timedelta(days=1),
        expected_close_date=timezone.localdate() - dt.timedelta(days=2),
    )
    Deal.objects.filter(pk=deal.pk).update(
        state_changed_at=timezone.now() - dt.timedelta(days=3, hours=1)
    )
    client.force_login(rep)
    html = client.get(reverse("deals:board")).content.decode()
    card = html[html.index(f'id="card-{deal.pk}"') : html.index(f'id="card-msg-{deal.pk}"')]
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Big deal" in card
    assert f'href="{deal.get_absolute_url()}"' in card
    assert "Acme GmbH · Tim" in card  # another rep's deal names its owner
    assert "12,500 EUR" in card
    assert "3 days in state" in card
    assert 'class="next overdue">Next: Call &lt;b&gt;Anna&lt;/b&gt;' in card
    assert '<span class="pill late" title="Expected close">Close ' in card and "(past)" in card
    assert f'hx-get="{reverse("deals:board_moves", args=[deal.pk])}"' in card
    assert 'draggable="true"' not in card  # a teammate cannot move Tim's deal
    assert f'data-move-url="{reverse("deals:deal_transition", args=[deal.pk, "ask"])}"' in card


def test_board_card_in_german(client, rep, make_deal):
    """The cards speak the user's language (one day, German number format)."""
    deal = make_deal(title="Eins", amount=Decimal("1250.5"))
    Deal.objects.filter(pk=deal.pk).update(state_changed_at=timezone.now() - dt.timedelta(days=1))
    rep.language = "de"
    rep.save(update_fields=["language"])
    client.force_login(rep)
    html = client.get(reverse("deals:board")).content.decode()
    with translation.override("de"):
        assert "1 Tag im Status" in html
        assert "1.250,50 EUR" in html
        assert "Verschieben nach…" in html
        assert 'draggable="true"' in html  # her own deal
