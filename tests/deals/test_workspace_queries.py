"""The workspace pages run a fixed number of SQL queries however many deals there are."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from contracts.models import ContractVersion
from deals import services
from deals.models import Deal
from tests.conftest import record_ask, send_agreement

pytestmark = pytest.mark.django_db


def build_pipeline(n: int, *, rep, teammate, account, contact) -> None:
    """`n` deals spread over the open states, half of them the teammate's, with overdue next
    steps, contracts out for signature, stalled ones and buying-group members."""
    today = timezone.localdate()
    for i in range(n):
        owner = rep if i % 2 == 0 else teammate
        deal = services.deal_create(
            by=owner,
            owner=owner,
            account=account,
            title=f"Acme deal {i}",
            amount=Decimal(1000 + i),
            next_step="Call back",
            next_step_due=today - dt.timedelta(days=i % 4),
            expected_close_date=today + dt.timedelta(days=i),
        )
        services.stakeholder_add(deal=deal, by=owner, contact=contact, role="signer")
        kind = i % 5
        if kind >= 1:
            record_ask(deal, owner)
        if kind >= 2:
            send_agreement(deal, owner)
            ContractVersion.objects.filter(deal=deal).update(
                status="sent", sent_at=timezone.now() - dt.timedelta(days=i % 9)
            )
        if kind == 3:
            services.deal_transition(deal=deal, transition="follow_up", by=owner)
        if kind == 4:
            services.deal_transition(deal=deal, transition="negotiate", by=owner)
        if i % 3 == 0:
            Deal.objects.filter(pk=deal.pk).update(
                last_activity_at=timezone.now() - dt.timedelta(days=30)
            )


PAGES = {
    "my_day_rep": ("rep", "home", ""),
    "my_day_manager": ("manager", "home", ""),
    "board": ("rep", "deals:board", ""),
    "board_filtered": ("manager", "deals:board", "owner=me&close=2031-01"),
    "deal_list": ("rep", "deals:deal_list", "sort=-amount"),
    "deal_list_filtered": ("manager", "deals:deal_list", "q=acme&state=open&page=2"),
    "search": ("rep", "deals:search", "q=acme"),
}


def count_queries(client, user, name: str, query: str) -> int:
    client.force_login(user)
    url = reverse(name) + (f"?{query}" if query else "")
    client.get(url)  # warm up: session, content types, stage settings caches
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


@pytest.mark.parametrize("page", PAGES)
def test_page_queries_do_not_grow_with_the_number_of_deals(
    client, page, rep, teammate, manager, account, contact
):
    """Each workspace page runs as many queries for 50 deals as for 5."""
    role, name, query = PAGES[page]
    user = {"rep": rep, "manager": manager}[role]
    build_pipeline(5, rep=rep, teammate=teammate, account=account, contact=contact)
    small = count_queries(client, user, name, query)
    build_pipeline(45, rep=rep, teammate=teammate, account=account, contact=contact)
    assert Deal.objects.count() == 50
    large = count_queries(client, user, name, query)
    assert small == large, f"{page}: {small} queries for 5 deals, {large} for 50"


#: Queries per page: session, user, the page's own reads (see each selector's docstring);
#: the board and the deal list read their saved views menu in one more.
EXPECTED = {"board": 13, "deal_list": 7, "search": 6}


@pytest.mark.parametrize("n", [5, 50])
@pytest.mark.parametrize("page", EXPECTED)
def test_page_query_budget(
    client, django_assert_num_queries, page, n, rep, teammate, account, contact
):
    """The board, deal list and search stay within a fixed query budget at any size."""
    build_pipeline(n, rep=rep, teammate=teammate, account=account, contact=contact)
    _, name, query = PAGES[page]
    client.force_login(rep)
    url = reverse(name) + (f"?{query}" if query else "")
    with django_assert_num_queries(EXPECTED[page]):
        assert client.get(url).status_code == 200
