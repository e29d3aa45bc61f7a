"""The running deal totals (DealTotal) always equal the live aggregate over the deals."""

from __future__ import annotations

import contextlib
import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deals import services
from deals.models import Deal, DealTotal
from pipeline import selectors as sel
from tests.concurrency import run_concurrently

from .test_stays import STEPS, _step

CURRENCIES = ["EUR", "USD", "GBP"]

#: What users do to deals that the totals count, each through the real service.
ACTIONS = st.one_of(
    st.tuples(st.just("create"), st.integers(0, 9), st.sampled_from(CURRENCIES)),
    st.tuples(st.just("step"), st.integers(0, 9), st.sampled_from(STEPS)),
    st.tuples(st.just("amount"), st.integers(0, 9), st.integers(0, 100_000)),
    st.tuples(st.just("currency"), st.integers(0, 9), st.sampled_from(CURRENCIES)),
    st.tuples(st.just("reassign"), st.integers(0, 9), st.booleans()),
    st.tuples(st.just("archive"), st.integers(0, 9), st.none()),
    # Time passing without work on the deal (what makes deals stalled).
    st.tuples(st.just("idle"), st.integers(0, 9), st.integers(1, 60)),
)


def _act(action, deals, *, rep, teammate, manager, account):
    kind, index, value = action
    if kind == "create" or not deals:
        owner = teammate if index % 2 else rep
        deals.append(
            services.deal_create(
                by=owner,
                owner=owner,
                account=account,
                title=f"Deal {len(deals)}",
                amount=Decimal(1000 + 37 * index),
                currency=value if kind == "create" else "EUR",
            )
        )
        return
    deal = deals[index % len(deals)]
    deal.refresh_from_db()
    if kind == "step":
        _step(deal, value, rep=deal.owner, manager=manager)
    elif kind == "amount":
        services.deal_update(deal=deal, by=deal.owner, amount=Decimal(value) / 4)
    elif kind == "currency":
        services.deal_update(deal=deal, by=deal.owner, currency=value)
    elif kind == "reassign":
        new_owner = teammate if deal.owner_id == rep.pk else rep
        services.deal_reassign(deal=deal, by=manager, new_owner=new_owner, reason="Holiday")
    elif kind == "archive":
        services.deal_archive(deal=deal, by=manager)
    elif kind == "idle":
        idle_since = timezone.now() - dt.timedelta(days=value)
        Deal.objects.filter(pk=deal.pk).update(last_activity_at=idle_since)


def _filters(user, **params):
    return sel.dashboard_filters(user, params)


@pytest.mark.django_db
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(actions=st.lists(ACTIONS, max_size=25))
def test_totals_equal_the_live_aggregate_after_random_service_sequences(
    rep, teammate, manager, admin_user, account, actions
):
    """Whatever users do (create, move, edit amount or currency, reassign, archive; allowed
    or refused), the running totals equal the live aggregate over the deals, and the
    dashboard figures read from them equal the same figures computed from the deals."""
    deals: list[Deal] = []
    for action in actions:
        with contextlib.suppress(services.DealError):
            _act(action, deals, rep=rep, teammate=teammate, manager=manager, account=account)
    assert services.deal_totals_differences() == []
    for user, params in [(manager, {}), (admin_user, {}), (rep, {}), (manager, {"rep": rep.pk})]:
        filters = _filters(user, **{k: str(v) for k, v in params.items()})
        live = sel.dashboard_deals(filters)
        totals = sel.dashboard_totals(filters)
        assert sel.pipeline_by_state(totals) == sel.pipeline_by_state(live)
        assert sel.stalled_by_state(live, totals=totals) == sel.stalled_by_state(live)
        for currency in CURRENCIES:
            args = (live, filters.start_at, filters.end_at, currency)
            assert sel.reps_side_by_side(*args, totals=totals) == sel.reps_side_by_side(*args)


@pytest.mark.django_db
def test_the_check_command_finds_a_drift_and_rebuild_repairs_it(deal, rep):
    """A write that bypassed the services shows up in `manage.py deal_totals`, and
    `--rebuild` makes the totals agree again."""
    call_command("deal_totals")  # agree: no error
    Deal.objects.filter(pk=deal.pk).update(amount=Decimal("123.45"))  # around the services
    with pytest.raises(CommandError, match="1 deal totals disagree"):
        call_command("deal_totals")
    call_command("deal_totals", "--rebuild")
    call_command("deal_totals")
    row = DealTotal.objects.get(owner=rep, state=deal.state, currency=deal.currency)
    assert (row.deals, row.amount) == (1, Decimal("123.45"))


@pytest.mark.django_db(transaction=True)
def test_concurrent_writes_to_deals_of_one_owner_keep_the_totals_exact(
    postgres, rep, manager, account
):
    """Twenty connections move and re-price twenty deals of the same owner, state and
    currency at the same moment: every increment lands on the shared totals rows (no lost
    update, no deadlock), and the totals equal the live aggregate."""
    deals = [
        services.deal_create(by=rep, account=account, title=f"D{i}", amount=Decimal(100 + i))
        for i in range(20)
    ]
    queue = list(deals)

    def act(_loaded):
        deal = Deal.objects.get(pk=queue.pop().pk)
        if deal.pk % 2:
            services.deal_update(deal=deal, by=rep, amount=Decimal(7) * deal.pk)
        services.deal_ask_record(
            deal=deal, by=rep, channel="call", statement="Go ahead?", answer="yes"
        )

    outcomes = run_concurrently(act, threads=20)
    assert [o.error for o in outcomes if not o.won] == []
    assert services.deal_totals_differences() == []
    assert DealTotal.objects.filter(state="asked").values_list("deals", flat=True).get() == 20


@pytest.mark.django_db(transaction=True)
def test_the_migration_backfills_the_totals(rep, manager, account):
    """Migrating a database whose deals predate the totals table fills it from them."""
    for n in range(3):
        services.deal_create(by=rep, account=account, title=f"D{n}", amount=Decimal(10 * n))
    call_command("migrate", "deals", "0015_team_countersigner", verbosity=0)
    call_command(
        "migrate", verbosity=0
    )  # every app: rolling deals back also unapplied its dependants
    assert services.deal_totals_differences() == []
    assert DealTotal.objects.get().deals == 3
