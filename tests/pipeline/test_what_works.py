"""What works: win rates of decided deals by habit, with 95% Wilson intervals, hand-computed.

Period: March 2026. Every deal is created on 1 March and decided on 10 March (10:00 UTC).

    deals          technique  asks           won / lost  review held  last follow-up sent
    SW1–SW4        summary    1 (yes)        won         SW1, SW2     SW3, SW4: #1, #2 email
    SW5–SW7        summary    2 (no, yes)   won           –            –
    SL1–SL3        summary    1 (no)         lost        –            SL1: #1 call
    PW1            soft       0              won         –            –
    PL1, PL2       soft       0              lost        –            –
    outside        summary    0              won 20 Feb  (not decided in March)
    open           summary    0              open        (not decided)

    technique: summary 7 of 10 → 70%, Wilson [0.3968, 0.8922]; soft 1 of 3 → too few
    asks: none 1 of 3; one 4 of 7; two 3 of 3
    review: held 2 of 2; none 6 of 11
    follow-up: none 6 of 10; #1 call 0 of 1; #2 email 2 of 2
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from contracts.models import ContractVersion
from deals import services
from followups.models import Reminder
from pipeline import selectors as sel
from pipeline.what_works import what_works, wilson_interval
from tests.conftest import record_ask

pytestmark = pytest.mark.django_db

UTC = dt.UTC
PERIOD = {"period": "custom", "start": "2026-03-01", "end": "2026-03-31"}


def at(day: dt.date, hour: int = 10):
    return time_machine.travel(dt.datetime.combine(day, dt.time(hour), tzinfo=UTC), tick=False)


def test_wilson_intervals_are_the_textbook_ones():
    low, high = wilson_interval(7, 10)
    assert (round(low, 4), round(high, 4)) == (0.3968, 0.8922)
    low, high = wilson_interval(0, 10)
    assert (round(low, 4), round(high, 4)) == (0.0, 0.2775)
    low, high = wilson_interval(10, 10)
    assert (round(low, 4), round(high, 4)) == (0.7225, 1.0)
    low, high = wilson_interval(1, 3)
    assert (round(low, 4), round(high, 4)) == (0.0615, 0.7923)
    assert wilson_interval(0, 0) is None


def _followup(deal, sequence: int, channel: str, sent: dt.datetime) -> None:
    """A follow-up as the dispatcher leaves it once sent (the contract it followed too)."""
    version, _ = ContractVersion.objects.get_or_create(
        deal=deal, number=1, defaults={"status": ContractVersion.Status.SENT, "provider": "builtin"}
    )
    Reminder.objects.create(
        deal=deal,
        contract_version=version,
        sequence=sequence,
        channel=channel,
        subject_template="Checking in",
        planned_at=sent,
        due_at=sent,
        status=Reminder.Status.SENT,
        sent_at=sent,
    )


@pytest.fixture
def history(rep, manager, account, contact):
    from followups.services import review_meeting_schedule

    deals = {}
    march_1, march_10 = dt.date(2026, 3, 1), dt.date(2026, 3, 10)

    def make(title, technique, day=march_1):
        with at(day):
            deal = services.deal_create(by=rep, account=account, title=title, amount=Decimal(1000))
            if technique:
                services.deal_technique_choose(deal=deal, by=rep, technique=technique)
        deals[title] = deal
        return deal

    def decide(deal, won: bool, day=march_10):
        with at(day):
            if won:
                services.deal_transition(
                    deal=deal, transition="override_won", by=manager, reason="x"
                )
            else:
                services.deal_transition(
                    deal=deal, transition="mark_lost", by=rep, loss_reason="price", reason="x"
                )

    for i in range(1, 5):
        deal = make(f"SW{i}", "summary")
        with at(dt.date(2026, 3, 2)):
            record_ask(deal, rep, answer="yes")
        if i <= 2:
            services.stakeholder_add(deal=deal, by=rep, contact=contact, role="signer")
            with at(dt.date(2026, 3, 2)):
                review_meeting_schedule(
                    deal=deal,
                    by=rep,
                    starts_at=dt.datetime(2026, 3, 5, 14, tzinfo=UTC),
                    attendees=[contact],
                )
        if i >= 3:
            _followup(deal, 1, "email", dt.datetime(2026, 3, 4, 9, tzinfo=UTC))
            _followup(deal, 2, "email", dt.datetime(2026, 3, 7, 9, tzinfo=UTC))
        decide(deal, won=True)
    for i in range(5, 8):
        deal = make(f"SW{i}", "summary")
        with at(dt.date(2026, 3, 2)):
            record_ask(deal, rep, answer="no")
        with at(dt.date(2026, 3, 3)):
            record_ask(deal, rep, answer="yes")
        decide(deal, won=True)
    for i in range(1, 4):
        deal = make(f"SL{i}", "summary")
        with at(dt.date(2026, 3, 2)):
            record_ask(deal, rep, answer="no")
        if i == 1:
            _followup(deal, 1, "call", dt.datetime(2026, 3, 4, 9, tzinfo=UTC))
            # Sent after the decision: not what preceded it.
            _followup(deal, 2, "email", dt.datetime(2026, 3, 12, 9, tzinfo=UTC))
        decide(deal, won=False)
    decide(make("PW1", "soft"), won=True)
    decide(make("PL1", "soft"), won=False)
    decide(make("PL2", "soft"), won=False)
    decide(make("outside", "summary", day=dt.date(2026, 2, 1)), True, day=dt.date(2026, 2, 20))
    make("open", "summary")
    return deals


def _works(user):
    with at(dt.date(2026, 4, 2)):
        return what_works(sel.dashboard_filters(user, PERIOD))


def _cells(works, key):
    (breakdown,) = [b for b in works["breakdowns"] if b["key"] == key]
    return {c["value"]: c for c in breakdown["cells"]}


def test_win_rates_by_habit_are_hand_computed(history, manager):
    works = _works(manager)
    assert (works["decided"], works["won"], works["minimum"]) == (13, 8, 10)

    technique = _cells(works, "technique")
    summary = technique["summary"]
    assert (summary["n"], summary["won"], summary["rate"], summary["enough"]) == (10, 7, 0.7, True)
    assert (round(summary["low"], 4), round(summary["high"], 4)) == (0.3968, 0.8922)
    soft = technique["soft"]
    assert (soft["n"], soft["won"], soft["enough"]) == (3, 1, False)

    asks = {k: (c["won"], c["n"]) for k, c in _cells(works, "asks").items()}
    assert asks == {"0": (1, 3), "1": (4, 7), "2": (3, 3)}

    review = {k: (c["won"], c["n"]) for k, c in _cells(works, "review").items()}
    assert review == {"held": (2, 2), "none": (6, 11)}

    followup = {k: (c["won"], c["n"]) for k, c in _cells(works, "followup").items()}
    assert followup == {"none": (6, 10), "1-call": (0, 1), "2-email": (2, 2)}


def test_the_threshold_is_a_setting(history, manager, settings):
    settings.WHAT_WORKS_MIN_DEALS = 3
    assert _cells(_works(manager), "technique")["soft"]["enough"] is True


def test_each_cell_drills_down_to_its_deals(client, history, manager):
    works = _works(manager)
    client.force_login(manager)

    def titles(href):
        with at(dt.date(2026, 4, 2)):
            response = client.get(href)
        assert response.status_code == 200
        page = response.content.decode()
        return {t for t in history if f">{t}<" in page}

    technique = _cells(works, "technique")
    assert titles(technique["summary"]["won_href"]) == {f"SW{i}" for i in range(1, 8)}
    assert titles(technique["summary"]["href"]) == {
        *(f"SW{i}" for i in range(1, 8)),
        *(f"SL{i}" for i in range(1, 4)),
    }
    assert titles(_cells(works, "asks")["2"]["href"]) == {"SW5", "SW6", "SW7"}
    assert titles(_cells(works, "review")["held"]["href"]) == {"SW1", "SW2"}
    assert titles(_cells(works, "followup")["2-email"]["href"]) == {"SW3", "SW4"}
    assert titles(_cells(works, "followup")["1-call"]["href"]) == {"SL1"}


def test_the_coaching_page_shows_rates_intervals_and_too_few(client, history, manager):
    client.force_login(manager)
    with at(dt.date(2026, 4, 2)):
        page = client.get(reverse("pipeline:coaching"), PERIOD).content.decode()
    assert "What works" in page
    assert "70%" in page and "(39.7–89.2%)" in page
    assert "Too few deals to say (3 decided)" in page


def test_another_teams_deals_are_never_counted(history, manager, other_manager, other_rep):
    other_account = services.account_create(by=other_rep, team=other_rep.team, name="Other")
    with at(dt.date(2026, 3, 1)):
        deal = services.deal_create(by=other_rep, account=other_account, title="Theirs")
        services.deal_technique_choose(deal=deal, by=other_rep, technique="summary")
    with at(dt.date(2026, 3, 10)):
        services.deal_transition(deal=deal, transition="override_won", by=other_manager, reason="x")
    assert _cells(_works(manager), "technique")["summary"]["n"] == 10
    theirs = _works(other_manager)
    assert (theirs["decided"], _cells(theirs, "technique")["summary"]["n"]) == (1, 1)


def _decided_deals(rep, manager, account, count: int, start: int = 0):
    techniques = ["summary", "soft", "option", ""]
    for i in range(start, start + count):
        with at(dt.date(2026, 3, 1)):
            deal = services.deal_create(by=rep, account=account, title=f"N{i}")
            if techniques[i % 4]:
                services.deal_technique_choose(deal=deal, by=rep, technique=techniques[i % 4])
            if i % 3 == 0:
                record_ask(deal, rep, answer="no")
        if i % 5 == 0:
            _followup(deal, 1 + i % 3, "email", dt.datetime(2026, 3, 4, 9, tzinfo=UTC))
        with at(dt.date(2026, 3, 10)):
            if i % 2:
                services.deal_transition(
                    deal=deal, transition="override_won", by=manager, reason="x"
                )
            else:
                services.deal_transition(
                    deal=deal, transition="mark_lost", by=rep, loss_reason="price", reason="x"
                )


def _queries(user) -> int:
    with at(dt.date(2026, 4, 2)):
        filters = sel.dashboard_filters(user, PERIOD)
        with CaptureQueriesContext(connection) as captured:
            what_works(filters)
    return len(captured)


def test_queries_do_not_grow_with_deals(rep, manager, account):
    _decided_deals(rep, manager, account, 10)
    small = _queries(manager)
    _decided_deals(rep, manager, account, 190, start=10)
    assert _queries(manager) == small == 4
