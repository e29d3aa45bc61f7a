"""Audit export: a deal's history for whoever may read the deal, every event in a date
range for admins, as CSV and JSON with the same rows."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from deals import services
from deals.models import DealEvent

pytestmark = pytest.mark.django_db


def _body(response) -> str:
    return b"".join(response.streaming_content).decode("utf-8-sig")


def _csv(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(_body(response))))


def test_a_deals_events_export_as_csv_and_json_oldest_first(client, rep, deal):
    """The owner downloads every event of the deal, with who, what and why, in both formats."""
    services.deal_note_add(deal=deal, by=rep, text="Spoke to the CFO.")
    client.force_login(rep)
    response = client.get(reverse("deals:deal_audit_export", args=[deal.pk, "csv"]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert f"deal-{deal.pk}-events.csv" in response["Content-Disposition"]
    rows = _csv(response)
    expected = list(DealEvent.objects.filter(deal=deal).order_by("created_at", "pk"))
    assert [int(r["id"]) for r in rows] == [e.pk for e in expected]
    assert rows[0]["kind"] == "created" and rows[0]["actor"] == "rita"
    assert rows[-1]["reason"] == "Spoke to the CFO."

    response = client.get(reverse("deals:deal_audit_export", args=[deal.pk, "json"]))
    assert response.status_code == 200
    document = json.loads(_body(response))
    assert document["deal"] == {"id": deal.pk, "title": deal.title, "state": deal.state}
    assert [e["id"] for e in document["events"]] == [e.pk for e in expected]
    assert document["events"][-1]["reason"] == "Spoke to the CFO."
    assert isinstance(document["events"][0]["data"], dict)


def test_another_teams_deal_history_is_a_404(client, other_rep, deal):
    """A user who cannot see the deal cannot export its history (no hint that it exists)."""
    client.force_login(other_rep)
    for fmt in ("csv", "json"):
        url = reverse("deals:deal_audit_export", args=[deal.pk, fmt])
        assert client.get(url).status_code == 404


def test_an_archived_deals_history_stays_exportable(client, rep, deal):
    """Archiving hides a deal from lists, not its audit trail from its owner."""
    services.deal_archive(deal=deal, by=rep, reason="Duplicate")
    client.force_login(rep)
    response = client.get(reverse("deals:deal_audit_export", args=[deal.pk, "csv"]))
    assert response.status_code == 200
    assert any(r["data"] and "archived" in r["data"] for r in _csv(response))


def test_admins_export_every_event_in_a_date_range(client, admin_user, deal, make_deal):
    """An admin gets the events of all teams between two dates (inclusive), nothing outside."""
    other = make_deal(title="Second deal")
    today = timezone.localdate()
    client.force_login(admin_user)
    url = reverse("deals:audit_export", args=["json"])
    response = client.get(url, {"start": today.isoformat(), "end": today.isoformat()})
    assert response.status_code == 200
    document = json.loads(_body(response))
    assert document["start"] == document["end"] == today.isoformat()
    assert {e["deal_id"] for e in document["events"]} == {deal.pk, other.pk}
    assert len(document["events"]) == DealEvent.objects.count()

    yesterday = (today - dt.timedelta(days=1)).isoformat()
    response = client.get(url, {"start": yesterday, "end": yesterday})
    assert json.loads(_body(response))["events"] == []
    response = client.get(
        reverse("deals:audit_export", args=["csv"]),
        {"start": today.isoformat(), "end": today.isoformat()},
    )
    assert {int(r["deal_id"]) for r in _csv(response)} == {deal.pk, other.pk}


def test_the_range_export_is_for_admins_and_refuses_bad_dates(client, manager, admin_user):
    """Managers and reps get 403; an admin with missing or reversed dates gets a clear 400."""
    client.force_login(manager)
    url = reverse("deals:audit_export", args=["csv"])
    assert client.get(url, {"start": "2026-01-01", "end": "2026-01-31"}).status_code == 403
    client.force_login(admin_user)
    response = client.get(url)
    assert response.status_code == 400
    assert response.json()["detail"] == "Give start as a date (YYYY-MM-DD)."
    response = client.get(url, {"start": "2026-02-01", "end": "2026-01-01"})
    assert response.status_code == 400
    assert response.json()["detail"] == "end is before start."
    assert client.get(reverse("deals:audit_export", args=["xml"])).status_code == 404


def test_the_deal_page_links_to_its_history_export(client, rep, deal):
    """The timeline offers the history as CSV and JSON."""
    client.force_login(rep)
    html = client.get(deal.get_absolute_url()).content.decode()
    assert reverse("deals:deal_audit_export", args=[deal.pk, "csv"]) in html
    assert reverse("deals:deal_audit_export", args=[deal.pk, "json"]) in html


def test_the_admin_audit_log_offers_the_range_export(client, admin_user, deal):
    """Admin → Deal events has a date form that exports the log as CSV or JSON."""
    client.force_login(admin_user)
    html = client.get("/admin/deals/dealevent/").content.decode()
    assert 'action="/audit/events.csv"' in html
    assert 'formaction="/audit/events.json"' in html
