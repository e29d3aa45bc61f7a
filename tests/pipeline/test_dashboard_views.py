"""Dashboard pages: what each role sees, bounded queries, drill-down links and CSV exports."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from deals import services
from deals.models import Ask
from tests.conftest import make_user

DASHBOARD_URLS = [
    "/dashboard/",
    "/dashboard/coaching/",
    "/dashboard/deals/?open=1",
    "/dashboard/csv/reps.csv",
]


def grow(rep, teammate, manager, account, count: int, start: int = 0):
    """`count` deals spread over two reps and every kind of history the dashboard reads."""
    for i in range(start, start + count):
        owner = rep if i % 2 else teammate
        deal = services.deal_create(
            by=owner, account=account, title=f"Deal {i}", amount=Decimal(1000 + i)
        )
        if i % 4 == 1:
            services.deal_ask_record(
                deal=deal, by=owner, channel="call", statement="Go?", answer=Ask.Answer.YES
            )
        elif i % 4 == 2:
            services.deal_transition(
                deal=deal, transition="mark_lost", by=owner, loss_reason="price", reason="No."
            )
        elif i % 4 == 3:
            services.deal_ask_record(
                deal=deal,
                by=owner,
                channel="call",
                statement="Go?",
                answer=Ask.Answer.NOT_YET,
                objection={"category": "terms", "detail": "Legal."},
            )
            services.deal_transition(
                deal=deal, transition="override_won", by=manager, reason="Paper."
            )


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured)


@pytest.mark.parametrize("url", DASHBOARD_URLS)
def test_query_count_does_not_grow_with_the_deals(client, rep, teammate, manager, account, url):
    """The same number of queries with 10 deals as with 200."""
    client.force_login(manager)
    grow(rep, teammate, manager, account, 10)
    small = _queries(client, url)
    grow(rep, teammate, manager, account, 190, start=10)
    assert _queries(client, url) == small


def test_manager_sees_every_figure_with_links(client, rep, teammate, manager, account):
    """The dashboard shows the close rate, charts with titles, and links to the deals behind
    each figure; following a link lists exactly those deals."""
    grow(rep, teammate, manager, account, 8)
    client.force_login(manager)
    response = client.get(reverse("pipeline:dashboard"))
    html = response.content.decode()
    assert response.status_code == 200
    for heading in [
        "Pipeline by state",
        "Forecast by expected close month",
        "Time in each state",
        "Stalled deals",
        "Loss reasons",
        "Objections by category",
        "Contracts out for signature",
        "Reps side by side",
    ]:
        assert heading in html
    assert html.count("<svg") >= 4
    assert "<title" in html and "<desc" in html
    assert "Amounts are shown per currency and never converted" in html
    # 8 deals: 2 won and 2 lost today → 50% close rate.
    assert "2 won / 4 closed in the period" in html
    response = client.get(reverse("pipeline:dashboard_deals"), {"closed": "lost"})
    assert [d.title for d in response.context["page"].object_list] == ["Deal 6", "Deal 2"]


def test_rep_sees_only_their_own_deals(client, rep, teammate, manager, account):
    """A rep's dashboard counts their own deals, not their teammates'."""
    grow(rep, teammate, manager, account, 4)
    client.force_login(rep)
    response = client.get(reverse("pipeline:dashboard_deals"))
    assert {d.owner_id for d in response.context["page"].object_list} == {rep.pk}
    response = client.get(reverse("pipeline:dashboard"))
    assert [r["owner"] for r in response.context["f"]["reps"]] == [rep.pk]


@pytest.mark.parametrize(
    "params",
    [
        {"team": "other"},
        {"rep": "other_rep"},
        {"rep": "teammate"},
        {"team": "not-a-number"},
    ],
)
@pytest.mark.parametrize("url", DASHBOARD_URLS)
def test_rep_cannot_widen_the_scope_with_a_parameter(
    client, rep, teammate, other_team, other_rep, url, params
):
    """Another team's or another rep's id in the query string is refused with 404."""
    values = {"other": other_team.pk, "other_rep": other_rep.pk, "teammate": teammate.pk}
    query = {key: values.get(value, value) for key, value in params.items()}
    client.force_login(rep)
    assert client.get(url, query).status_code == 404


@pytest.mark.parametrize("url", DASHBOARD_URLS)
def test_manager_cannot_see_another_team(client, manager, other_team, other_rep, url):
    client.force_login(manager)
    assert client.get(url, {"team": other_team.pk}).status_code == 404
    assert client.get(url, {"rep": other_rep.pk}).status_code == 404


def test_other_teams_figures_never_show(client, manager, other_rep, other_team):
    """A deal of another team is in no figure of the manager's dashboard."""
    account = services.account_create(by=other_rep, team=other_team, name="Far away")
    services.deal_create(by=other_rep, account=account, title="Secret", amount=Decimal("987654"))
    client.force_login(manager)
    html = client.get(reverse("pipeline:dashboard")).content.decode()
    assert "987,654" not in html and "987654" not in html
    rows = list(csv.reader(io.StringIO(client.get(DASHBOARD_URLS[3]).content.decode())))
    assert len(rows) == 1  # the header only


def test_admin_filters_by_team(client, admin_user, manager, rep, account, other_rep, other_team):
    """An admin sees all teams and may narrow to one with the team filter."""
    services.deal_create(by=rep, account=account, title="North", amount=Decimal("100"))
    far = services.account_create(by=other_rep, team=other_team, name="Far away")
    services.deal_create(by=other_rep, account=far, title="South", amount=Decimal("200"))
    client.force_login(admin_user)
    url = reverse("pipeline:dashboard_deals")
    everything = client.get(url).context["page"].object_list
    assert {d.title for d in everything} == {"North", "South"}
    south = client.get(url, {"team": other_team.pk}).context["page"].object_list
    assert [d.title for d in south] == ["South"]
    assert client.get(url, {"team": 999999}).status_code == 404


def test_pipeline_csv_has_the_tables_numbers(client, manager, rep, account):
    """The CSV export carries the same figures as the table on the page."""
    services.deal_create(by=rep, account=account, title="One", amount=Decimal("1000"))
    services.deal_create(
        by=rep, account=account, title="Two", amount=Decimal("500"), currency="USD"
    )
    client.force_login(manager)
    response = client.get(reverse("pipeline:dashboard_csv", args=["pipeline"]))
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows == [
        ["state", "currency", "deals", "amount", "probability_percent", "weighted_amount"],
        ["intent_spotted", "EUR", "1", "1000.00", "10", "100.00"],
        ["intent_spotted", "USD", "1", "500.00", "10", "50.00"],
    ]


@pytest.mark.parametrize(
    "figure",
    [
        "pipeline",
        "forecast",
        "close-rate",
        "time-in-state",
        "stalled",
        "asks",
        "objections",
        "loss-reasons",
        "contracts-out",
        "reps",
    ],
)
def test_every_figure_exports_csv(client, manager, rep, teammate, account, figure):
    grow(rep, teammate, manager, account, 8)
    client.force_login(manager)
    response = client.get(reverse("pipeline:dashboard_csv", args=[figure]))
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert len(rows) >= 2 and all(len(row) == len(rows[0]) for row in rows)


def test_unknown_figure_is_404(client, manager):
    client.force_login(manager)
    assert client.get(reverse("pipeline:dashboard_csv", args=["nope"])).status_code == 404


def test_coaching_lists_weakest_deals_first(client, manager, rep, account, contact):
    """A deal with nothing recorded comes before a deal whose questions are answered."""
    weak = services.deal_create(by=rep, account=account, title="Weak", amount=Decimal("10"))
    strong = services.deal_create(by=rep, account=account, title="Strong", amount=Decimal("10"))
    services.deal_readiness_set(
        deal=strong,
        by=rep,
        items={
            "ready_needs_understood": True,
            "ready_value_established": True,
        },
    )
    # "Decision maker and signer known" is derived from the buying group.
    services.stakeholder_add(deal=strong, by=rep, contact=contact, role="decision_maker")
    services.stakeholder_add(deal=strong, by=rep, contact=contact, role="signer")
    services.deal_ask_record(
        deal=strong, by=rep, channel="call", statement="Go?", answer=Ask.Answer.YES
    )
    client.force_login(manager)
    response = client.get(reverse("pipeline:coaching"))
    rows = response.context["rows"]
    assert [r["deal"] for r in rows] == [weak, strong]
    assert [yes for _k, _q, yes in rows[1]["answers"]] == [True] * 5
    html = response.content.decode()
    assert "✗ No" in html and "✓ Yes" in html


def test_new_user_without_team_gets_an_empty_dashboard(client, db):
    """A rep not yet in a team sees empty figures, not an error."""
    user = make_user("newbie", None)
    client.force_login(user)
    assert client.get(reverse("pipeline:dashboard")).status_code == 200


def test_dashboard_needs_login(client, db):
    response = client.get(reverse("pipeline:dashboard"))
    assert response.status_code == 302
