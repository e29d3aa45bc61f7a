"""The stays table: one row per deal per stay in a state, kept with the audit log."""

from __future__ import annotations

import contextlib
import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deals import services
from deals.models import DealState, DealStay, LossReason

from .stays import stays_from_events, stays_from_table

UTC = dt.UTC

#: What a user can do to a deal's state, each through the real service. Moves the rules
#: refuse at that moment (a guard, a permission) are simply refused and change nothing.
STEPS = [
    "ask_yes",
    "ask_no",
    "negotiate",
    "send_agreement",
    "follow_up",
    "mark_lost",
    "override_won",
    "reopen",
    "rep_override_won",
]


def _step(deal, step, *, rep, manager):
    if step in ("ask_yes", "ask_no"):
        services.deal_ask_record(
            deal=deal,
            by=rep,
            channel="call",
            statement="Shall we go ahead?",
            answer="yes" if step == "ask_yes" else "no",
        )
    elif step == "mark_lost":
        services.deal_transition(
            deal=deal, transition="mark_lost", by=rep, loss_reason=LossReason.values[0]
        )
    elif step == "rep_override_won":  # refused: overrides are for managers
        services.deal_transition(deal=deal, transition="override_won", by=rep, reason="x")
    elif step in ("override_won", "reopen"):
        services.deal_transition(deal=deal, transition=step, by=manager, reason="Decided.")
    else:
        services.deal_transition(deal=deal, transition=step, by=rep)


@pytest.mark.django_db
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(STEPS), st.integers(min_value=0, max_value=200)), max_size=12
    )
)
def test_stays_agree_with_the_event_log_after_random_transitions(rep, manager, account, steps):
    """Whatever sequence of moves users try (allowed or refused), every deal's stays table
    holds exactly the stays its audit log implies: same states, times and people, one
    open stay, the deal's current state."""
    start = dt.datetime(2026, 3, 2, 9, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        deal = services.deal_create(by=rep, account=account, title="Random", amount=Decimal(1))
    at = start
    for step, hours in steps:
        at += dt.timedelta(hours=hours, minutes=1)
        # Refused moves (a guard, a permission) change nothing.
        with time_machine.travel(at, tick=False), contextlib.suppress(services.DealError):
            _step(deal, step, rep=rep, manager=manager)
    assert stays_from_table([deal.pk]) == stays_from_events([deal.pk])
    open_stays = DealStay.objects.filter(deal=deal, left_at__isnull=True)
    assert [s.state for s in open_stays] == [deal.state]


@pytest.mark.django_db
def test_a_transition_closes_the_stay_and_opens_the_next(deal, rep):
    """Asking ends the deal's stay at intent spotted, with who moved it, and opens `asked`."""
    services.deal_ask_record(deal=deal, by=rep, channel="call", statement="Go ahead?", answer="yes")
    first, second = DealStay.objects.filter(deal=deal)
    assert (first.state, first.entered_by, first.left_by) == (
        DealState.INTENT_SPOTTED,
        rep,
        rep,
    )
    assert first.left_at == second.entered_at and first.duration is not None
    assert (second.state, second.left_at, second.entered_by) == (DealState.ASKED, None, rep)


@pytest.mark.django_db(transaction=True)
def test_the_backfill_migration_rebuilds_stays_from_the_event_log(rep, manager, account):
    """Migrating a database that had only the audit log back-fills every deal's stays."""
    deals = []
    for n in range(3):
        deal = services.deal_create(by=rep, account=account, title=f"D{n}", amount=Decimal(1))
        if n:
            services.deal_transition(
                deal=deal, transition="mark_lost", by=rep, loss_reason=LossReason.values[0]
            )
        if n == 2:
            services.deal_transition(deal=deal, transition="reopen", by=manager, reason="Back")
        deals.append(deal.pk)
    expected = stays_from_events(deals)
    call_command("migrate", "deals", "0006_deal_stays", verbosity=0)  # the rows are dropped
    assert not DealStay.objects.exists()
    call_command(
        "migrate", verbosity=0
    )  # every app: rolling deals back also unapplied its dependants
    assert stays_from_table(deals) == expected
