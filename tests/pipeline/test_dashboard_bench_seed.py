"""The benchmark seed writes histories the dashboards can trust (bench/seed.py, small scale)."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from deals.models import OPEN_STATES, Deal, DealEvent, DealState, User
from pipeline import selectors as sel
from tests.deals.stays import stays_from_events, stays_from_table

SEED = Path(__file__).resolve().parents[2] / "bench" / "seed.py"


def run_seed(**options):
    spec = importlib.util.spec_from_file_location("bench_seed", SEED)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.seed(argparse.Namespace(**options))


def test_seeded_histories_follow_the_state_machine(db):
    """Every seeded deal's transitions chain from intent spotted to its current state, in time
    order; closed deals have a close date and open ones none; the stays table agrees."""
    run_seed(deals=120, events=1200, reps=6, teams=2, seed=3)
    assert Deal.objects.count() == 120
    assert 1000 <= DealEvent.objects.count() <= 1400
    events: dict[int, list] = {}
    for event in DealEvent.objects.filter(kind__in=["created", "transition"]).order_by(
        "deal_id", "created_at", "id"
    ):
        events.setdefault(event.deal_id, []).append(event)
    for deal in Deal.objects.all():
        history = events[deal.pk]
        assert history[0].kind == "created"
        state = DealState.INTENT_SPOTTED
        for event in history[1:]:
            assert event.from_state == state
            state = event.to_state
        assert state == deal.state
        assert (deal.closed_at is None) == (deal.state in OPEN_STATES)
    ids = list(Deal.objects.values_list("pk", flat=True))
    assert stays_from_table(ids) == stays_from_events(ids)  # the seed writes the stays too


def test_dashboard_figures_on_seeded_data(db):
    """The manager's figures add up: the pipeline counts every deal of the team once."""
    run_seed(deals=80, events=800, reps=4, teams=2, seed=5)
    manager = User.objects.get(username="bench_mgr01")
    filters = sel.dashboard_filters(manager, {})
    deals = sel.dashboard_deals(filters)
    rows = sel.pipeline_by_state(deals)
    assert sum(r["count"] for r in rows) == Deal.objects.filter(team=manager.team).count() == 40
    stays = sel.time_in_state(deals, filters.start_at, filters.end_at)
    assert all(r["median_days"] is None or r["median_days"] >= 0 for r in stays)
