"""The deal page stays bounded on a deal with a long history: newest first, older on demand,
and the stage history read from the stays table."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from deals import services
from deals.models import Ask, BuyingSignal, Concession, DealEvent, LossReason, Objection
from deals.selectors import PANEL_LIMIT

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return unescape(response.content.decode())


def grow(deal, rep, n: int) -> None:
    """`n` notes, signals, asks, objections and concessions, an hour apart (bulk inserts:
    the audit log accepts new rows)."""
    start = timezone.now() - dt.timedelta(hours=n + 1)
    at = [start + dt.timedelta(hours=i) for i in range(n)]
    DealEvent.objects.bulk_create(
        DealEvent(deal=deal, actor=rep, kind="note", reason=f"Note {i}", created_at=at[i])
        for i in range(n)
    )
    BuyingSignal.objects.bulk_create(
        BuyingSignal(deal=deal, kind="pricing", note=f"Signal {i}", observed_at=at[i])
        for i in range(n)
    )
    Ask.objects.bulk_create(
        Ask(deal=deal, number=i + 1, channel="call", statement="s", answer="no", asked_at=at[i])
        for i in range(n)
    )
    Objection.objects.bulk_create(
        Objection(deal=deal, category="price", detail=f"Obj {i}", raised_at=at[i]) for i in range(n)
    )
    Concession.objects.bulk_create(
        Concession(deal=deal, give=f"G{i}", get=f"R{i}", created_at=at[i]) for i in range(n)
    )


def page_queries(client, deal) -> tuple[int, str]:
    client.get(deal.get_absolute_url())  # warm the session and user lookups
    with CaptureQueriesContext(connection) as queries:
        response = client.get(deal.get_absolute_url())
    assert response.status_code == 200
    return len(queries), text(response)


def test_the_page_runs_the_same_queries_for_10_and_1000_events(client, rep, make_deal):
    """A deal with 1,000 events, signals, asks, objections and concessions costs the page
    exactly as many queries as one with 10, and shows the totals, not just what it loaded."""
    client.force_login(rep)
    small, large = make_deal(title="Small"), make_deal(title="Large")
    grow(small, rep, 10)
    grow(large, rep, 1000)
    small_count, _ = page_queries(client, small)
    large_count, body = page_queries(client, large)
    assert small_count == large_count
    assert "1001 events" in body  # 1,000 notes and the "created" event
    assert "Note 999" in body and "Note 949" not in body  # the newest 50
    assert "Record the 1001" in body and "make the 1001st ask" in body


def test_older_events_load_page_by_page_without_gaps(client, rep, make_deal):
    """ "Older events" walks back through the whole timeline, 50 at a time, each event once."""
    client.force_login(rep)
    deal = make_deal(title="Long history")
    grow(deal, rep, 120)
    body = text(client.get(deal.get_absolute_url()))
    seen = re.findall(r"Note (\d+)</p>", body)
    older = re.search(r"\?before=(\d+)", body)
    while older:
        response = client.get(
            reverse("deals:deal_timeline", args=[deal.pk]), {"before": older.group(1)}
        )
        assert response.status_code == 200
        page = text(response)
        seen += re.findall(r"Note (\d+)</p>", page)
        older = re.search(r"\?before=(\d+)", page)
    assert [int(n) for n in seen] == list(range(119, -1, -1))
    assert len(seen) > PANEL_LIMIT


def test_the_stage_history_shows_each_stay_with_who_moved_it(client, rep, manager, deal):
    """Each stay is a row: state, entered, left, time in state and who moved the deal in."""
    services.deal_transition(
        deal=deal, transition="mark_lost", by=rep, loss_reason=LossReason.values[0]
    )
    services.deal_transition(deal=deal, transition="reopen", by=manager, reason="They called")
    client.force_login(rep)
    body = text(client.get(deal.get_absolute_url()))
    history = body[body.index('id="deal-stays"') : body.index('id="deal-timeline"')]
    history = history[history.index("<tbody>") :]
    rows = re.findall(r"<tr(?: class=\"current\")?>(.*?)</tr>", history, re.S)
    states = [re.search(r'class="state state-(\w+)"', row).group(1) for row in rows]
    assert states == ["intent_spotted", "closed_lost", "intent_spotted"]
    assert "Mona" in rows[2] and "now" in rows[2] and "so far" in rows[2]
    assert "Rita" in rows[1] and "minute" in rows[1]


def test_each_kind_of_event_reads_as_a_short_heading(client, rep, make_deal):
    """Transitions, numbered asks, objections and concessions get their own headings (in
    German too); other events show their kind; the time shows in the user's words."""
    deal = make_deal(title="Headings")
    at = timezone.now() + dt.timedelta(minutes=1)  # after "Deal created"
    events = [
        ("transition", {}, "", "asked"),
        ("ask", {"number": 1, "answer": "not_yet"}, "", ""),
        ("ask", {"number": 2, "answer": "yes"}, "", ""),
        ("ask", {"number": 3, "answer": "no"}, "", ""),
        ("ask", {"number": 11, "answer": "no"}, "", ""),
        ("objection", {"status": "resolved"}, "", ""),
        ("objection", {"status": "accepted_loss"}, "", ""),
        ("objection", {}, "", ""),
        ("concession", {"status": "accepted"}, "", ""),
        ("note", {}, "", ""),
    ]
    DealEvent.objects.bulk_create(
        DealEvent(
            deal=deal,
            actor=rep,
            kind=kind,
            data=data,
            from_state=from_state,
            to_state=to_state,
            reason="<b>Why</b> " + "x" * 300,
            created_at=at + dt.timedelta(minutes=i),
        )
        for i, (kind, data, from_state, to_state) in enumerate(events)
    )
    client.force_login(rep)
    body = client.get(deal.get_absolute_url()).content.decode()
    headings = re.findall(r'<div class="ev-head"><strong>(.*?)</strong>', body)
    assert headings[:10] == [
        "Note",
        "Concession accepted",
        "Objection raised",
        "Objection accepted as a loss",
        "Objection resolved",
        "11th ask: no",
        "3rd ask: no",
        "2nd ask: yes",
        "1st ask: not yet",
        "— → Asked",
    ]
    assert "&lt;b&gt;Why&lt;/b&gt; " + "x" * 228 + "…</p>" in body  # escaped, 240 characters
    assert re.search(
        r'<time datetime="[^"]+T[^"]+" title="[^"]+">[^<]+, \d\d:\d\d [A-Z]+</time>', body
    )
    german = client.get(deal.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="de").content.decode()
    headings = re.findall(r'<div class="ev-head"><strong>(.*?)</strong>', german)
    assert headings[5:9] == [
        "11. Abschlussfrage: no",
        "3. Abschlussfrage: no",
        "2. Abschlussfrage: yes",
        "1. Abschlussfrage: noch nicht",
    ]
    assert headings[4] == "Einwand gelöst"
