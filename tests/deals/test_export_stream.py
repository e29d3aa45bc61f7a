"""The deal list CSV export streams plain rows: the same queries for 10 or 200 deals."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

pytestmark = pytest.mark.django_db


def export(client) -> tuple[int, list[list[str]]]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("deals:deal_list_csv"))
        assert response.streaming
        body = b"".join(response.streaming_content).decode("utf-8-sig")
    return len(captured), list(csv.reader(io.StringIO(body)))


def test_the_export_runs_the_same_queries_for_10_and_200_deals(client, rep, make_deal):
    """Rows come from one streamed query of plain values (no per-row lookups), chunked."""
    client.force_login(rep)
    for i in range(10):
        make_deal(title=f"Deal {i:03}", amount=Decimal("1000.50"))
    client.get(reverse("deals:deal_list_csv"))  # warm the session
    small, rows = export(client)
    assert len(rows) == 11 and rows[0][:3] == ["id", "title", "account"]
    for i in range(10, 200):
        make_deal(title=f"Deal {i:03}", amount=Decimal("1000.50"))
    large, rows = export(client)
    assert small == large
    assert len(rows) == 201
    first = rows[1]
    assert first[2] == "Acme GmbH" and first[3] == "rita" and first[5] == "1000.50"


def test_formula_text_is_neutralised_in_the_streamed_export(client, rep, make_deal):
    """A title a spreadsheet would run as a formula comes out as text."""
    client.force_login(rep)
    make_deal(title='=HYPERLINK("http://evil")')
    _, rows = export(client)
    assert rows[1][1] == '\'=HYPERLINK("http://evil")'


def test_every_cell_says_what_the_deal_holds(client, rep, make_deal):
    """Times in ISO 8601 (UTC) for the same instant, amounts with two decimals, dates as
    YYYY-MM-DD, empty cells for what is not set: on PostgreSQL these are written by the
    database, elsewhere by Python; the file says the same either way."""
    import datetime as dt

    from deals.models import Deal
    from deals.views.imports import EXPORT_COLUMNS

    deal = make_deal(
        title="Cells",
        amount=Decimal("1234.5"),
        expected_close_date=dt.date(2031, 2, 3),
        next_step="Call",
        next_step_due=dt.date(2031, 1, 9),
    )
    deal = Deal.objects.get(pk=deal.pk)
    client.force_login(rep)
    _count, rows = export(client)
    header, row = rows[0], rows[1]
    assert header == [name for name, _ in EXPORT_COLUMNS]
    cell = dict(zip(header, row, strict=True))
    assert cell["id"] == str(deal.pk)
    assert cell["amount"] == "1234.50"
    assert cell["expected_close_date"] == "2031-02-03"
    assert cell["next_step_due"] == "2031-01-09"
    assert cell["closed_at"] == ""
    assert cell["term_months"] == (str(deal.term_months) if deal.term_months else "")
    for name in ("created_at", "last_activity_at"):
        written = dt.datetime.fromisoformat(cell[name])
        assert written.utcoffset() == dt.timedelta(0)
        assert written == getattr(deal, name)
