"""Generate realistic data at scale for the benchmarks, on the configured DATABASE_URL.

Defaults: 20 teams, 200 reps (10 per team) plus one manager per team, 100,000 deals and
about 1,000,000 deal events, with the asks, objections, stakeholders and contract
versions that the dashboards read. Deals follow the real state machine: every deal's
transition events form a legal path from `intent_spotted` to its current state, some
deals were lost and reopened, and timestamps run forward in time.

This script deliberately BYPASSES deals.services and writes with bulk_create: replaying
100,000 histories through the services (one transaction, audit event and signal per
step) would take hours. It is for benchmark databases only, never for real data.
DealEvent.objects.bulk_create is allowed: the audit log refuses update, delete and
re-saving existing rows, not inserting new ones.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_crm \\
        .venv/bin/python bench/seed.py [--deals 100000] [--events 1000000] [--reps 200] \\
        [--teams 20] [--seed 7]

Run it on an empty database (it migrates first and refuses to seed twice). Logins:
`bench_admin`, `bench_mgr01`…, `bench_rep001`…, password `bench`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "closing_crm.settings")
os.environ.setdefault("DEBUG", "1")

import django  # noqa: E402

django.setup()

from django.contrib.auth.hashers import make_password  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from contracts.models import ContractVersion  # noqa: E402
from deals.models import (  # noqa: E402
    Account,
    Ask,
    Contact,
    Deal,
    DealEvent,
    DealState,
    DealStay,
    LossReason,
    Objection,
    Stakeholder,
    Team,
    User,
)

S = DealState
#: Share of deals per current state (sums to 1).
STATE_MIX = [
    (S.INTENT_SPOTTED, 0.16),
    (S.ASKED, 0.12),
    (S.AGREEMENT_SENT, 0.09),
    (S.NEGOTIATING, 0.10),
    (S.FOLLOW_UP, 0.08),
    (S.CLOSED_WON, 0.25),
    (S.CLOSED_LOST, 0.20),
]
#: One legal path (transition name, target) per current state.
PATHS = {
    S.INTENT_SPOTTED: [],
    S.ASKED: [("ask", S.ASKED)],
    S.AGREEMENT_SENT: [("ask", S.ASKED), ("send_agreement", S.AGREEMENT_SENT)],
    S.NEGOTIATING: [("ask", S.ASKED), ("negotiate", S.NEGOTIATING)],
    S.FOLLOW_UP: [
        ("ask", S.ASKED),
        ("send_agreement", S.AGREEMENT_SENT),
        ("follow_up", S.FOLLOW_UP),
    ],
    S.CLOSED_WON: [
        ("ask", S.ASKED),
        ("send_agreement", S.AGREEMENT_SENT),
        ("follow_up", S.FOLLOW_UP),
        ("mark_won", S.CLOSED_WON),
    ],
    S.CLOSED_LOST: [("ask", S.ASKED), ("negotiate", S.NEGOTIATING), ("mark_lost", S.CLOSED_LOST)],
}
FILLER_KINDS = ["signal", "note", "readiness", "reminder", "meeting", "task", "edited", "contract"]
CURRENCIES = ["EUR", "USD", "GBP", "CHF"]
OBJECTION_CATEGORIES = [c for c, _ in Objection.Category.choices]
LOSS_REASONS = [c for c, _ in LossReason.choices]
BATCH = 2000


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--teams", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args()


def people(teams: int, reps: int):
    password = make_password("bench")
    team_rows = Team.objects.bulk_create(
        [
            Team(name=f"Bench team {i + 1:02d}", currency=CURRENCIES[i % len(CURRENCIES)])
            for i in range(teams)
        ]
    )
    team_rows = list(Team.objects.filter(name__startswith="Bench team ").order_by("name"))
    User.objects.create_superuser(
        username="bench_admin", password="bench", email="bench_admin@example.com"
    )
    managers = [
        User(
            username=f"bench_mgr{i + 1:02d}",
            first_name="Manager",
            last_name=f"{i + 1:02d}",
            role=User.Role.MANAGER,
            team=team,
            password=password,
            email=f"bench_mgr{i + 1:02d}@example.com",
        )
        for i, team in enumerate(team_rows)
    ]
    rep_rows = [
        User(
            username=f"bench_rep{i + 1:03d}",
            first_name="Rep",
            last_name=f"{i + 1:03d}",
            role=User.Role.REP,
            team=team_rows[i % teams],
            password=password,
            email=f"bench_rep{i + 1:03d}@example.com",
        )
        for i in range(reps)
    ]
    User.objects.bulk_create(managers + rep_rows)
    reps_by_team: dict[int, list[int]] = {}
    for user_id, team_id in User.objects.filter(
        username__startswith="bench_rep", role=User.Role.REP
    ).values_list("id", "team_id"):
        reps_by_team.setdefault(team_id, []).append(user_id)
    return team_rows, reps_by_team


def accounts(team_rows, reps_by_team, rng, per_team: int = 60):
    rows = []
    for team in team_rows:
        owners = reps_by_team[team.pk]
        rows += [
            Account(name=f"Customer {team.pk}-{n:03d}", team=team, owner_id=rng.choice(owners))
            for n in range(per_team)
        ]
    Account.objects.bulk_create(rows, batch_size=BATCH)
    by_team: dict[int, list[int]] = {}
    for account_id, team_id in Account.objects.filter(name__startswith="Customer ").values_list(
        "id", "team_id"
    ):
        by_team.setdefault(team_id, []).append(account_id)
    contacts = [
        Contact(account_id=account_id, first_name=first, last_name=f"Buyer {account_id}")
        for ids in by_team.values()
        for account_id in ids
        for first in ("Signe", "Dana", "Chris")
    ]
    Contact.objects.bulk_create(contacts, batch_size=BATCH)
    signer_of = dict(
        Contact.objects.filter(first_name="Signe", last_name__startswith="Buyer ").values_list(
            "account_id", "id"
        )
    )
    return by_team, signer_of


def pick_state(rng) -> str:
    roll = rng.random()
    for state, share in STATE_MIX:
        roll -= share
        if roll <= 0:
            return state
    return S.CLOSED_LOST


def plan_deal(rng, now, events_per_deal: float):
    """The current state and a timed, legal history for one deal."""
    state = pick_state(rng)
    steps = list(PATHS[state])
    reopened = state not in (S.CLOSED_LOST, S.INTENT_SPOTTED) and rng.random() < 0.05
    if reopened:
        steps = [("ask", S.ASKED), ("mark_lost", S.CLOSED_LOST), ("reopen", S.INTENT_SPOTTED)] + (
            steps
        )
    gaps = [rng.uniform(0.2, 14) for _ in steps]
    span = sum(gaps) + rng.uniform(0, 20 if state in (S.CLOSED_WON, S.CLOSED_LOST) else 30)
    created = now - dt.timedelta(days=span + rng.uniform(0, 480))
    if created > now - dt.timedelta(days=sum(gaps) + 0.1):
        created = now - dt.timedelta(days=sum(gaps) + 0.1)
    t = created
    timeline = []
    for (name, target), gap in zip(steps, gaps, strict=True):
        t = t + dt.timedelta(days=gap)
        timeline.append((name, target, t))
    asks = sum(1 for name, _target in steps if name == "ask")  # each ask also logs an event
    fillers = max(0, round(rng.gauss(events_per_deal - 1 - len(steps) - asks, 2)))
    return state, created, timeline, fillers


def seed(args):
    rng = random.Random(args.seed)
    now = timezone.now()
    started = time.monotonic()
    if Team.objects.filter(name__startswith="Bench team ").exists():
        sys.exit("Bench data already present: use an empty database (manage.py flush).")
    with transaction.atomic():
        team_rows, reps_by_team = people(args.teams, args.reps)
        accounts_by_team, signer_of = accounts(team_rows, reps_by_team, rng)
    print(f"teams, users, accounts, contacts: {time.monotonic() - started:.0f}s", flush=True)
    events_per_deal = args.events / max(args.deals, 1)
    teams = [t for t in team_rows if reps_by_team.get(t.pk)]
    done = 0
    totals = dict.fromkeys(["events", "asks", "objections", "contracts", "stakeholders"], 0)
    while done < args.deals:
        size = min(BATCH, args.deals - done)
        plans, deals = [], []
        for n in range(size):
            team = teams[(done + n) % len(teams)]
            owner = rng.choice(reps_by_team[team.pk])
            state, created, timeline, fillers = plan_deal(rng, now, events_per_deal)
            last = timeline[-1][2] if timeline else created
            last_activity = last + dt.timedelta(days=rng.uniform(0, 3))
            last_activity = min(last_activity, now)
            closed = last if state in (S.CLOSED_WON, S.CLOSED_LOST) else None
            is_open = closed is None
            expected = (
                (now + dt.timedelta(days=rng.randint(-30, 240))).date()
                if is_open and rng.random() < 0.9
                else (closed or now).date()
            )
            ready = [rng.random() < p for p in (0.7, 0.6, 0.55, 0.5, 0.45, 0.4)]
            deals.append(
                Deal(
                    title=f"Bench deal {done + n + 1}",
                    account_id=rng.choice(accounts_by_team[team.pk]),
                    team=team,
                    owner_id=owner,
                    state=state,
                    state_changed_at=last,
                    amount=Decimal(rng.choice([5, 8, 12, 15, 24, 36, 48, 60, 120]) * 1000),
                    currency=team.currency if rng.random() < 0.9 else rng.choice(CURRENCIES),
                    expected_close_date=expected,
                    ready_needs_understood=ready[0],
                    ready_solution_fits=ready[1],
                    ready_value_established=ready[2],
                    ready_objections_resolved=ready[3],
                    ready_signer_known=ready[4],
                    ready_budget_timing=ready[5],
                    metrics="Cut time-to-signature in half." if rng.random() < 0.4 else "",
                    loss_reason=rng.choice(LOSS_REASONS) if state == S.CLOSED_LOST else "",
                    last_activity_at=last_activity,
                    closed_at=closed,
                    created_at=created,
                )
            )
            plans.append((state, created, timeline, fillers, owner, last_activity))
        with transaction.atomic():
            Deal.objects.bulk_create(deals, batch_size=BATCH)
            if deals[0].pk is None:  # backends that do not return ids
                ids = list(
                    Deal.objects.filter(title__in=[d.title for d in deals]).values_list(
                        "title", "id"
                    )
                )
                by_title = dict(ids)
                for deal in deals:
                    deal.pk = deal.id = by_title[deal.title]
            events, asks, objections, contracts, stakeholders = [], [], [], [], []
            stays = []
            for deal, (state, created, timeline, fillers, owner, last_activity) in zip(
                deals, plans, strict=True
            ):
                events.append(
                    DealEvent(deal_id=deal.pk, actor_id=owner, kind="created", created_at=created)
                )
                previous = S.INTENT_SPOTTED
                ask_number = 0
                # The stays table, as deal_transition writes it: one row per stay.
                entered, spent = created, {}
                for _name, target, at in timeline:
                    spent[previous] = spent.get(previous, 0) + (at - entered).total_seconds()
                    stays.append(
                        DealStay(
                            deal_id=deal.pk,
                            state=previous,
                            entered_at=entered,
                            left_at=at,
                            entered_by_id=owner,
                            left_by_id=owner,
                            state_seconds=spent[previous],
                        )
                    )
                    previous, entered = target, at
                stays.append(
                    DealStay(
                        deal_id=deal.pk, state=previous, entered_at=entered, entered_by_id=owner
                    )
                )
                previous = S.INTENT_SPOTTED
                for name, target, at in timeline:
                    events.append(
                        DealEvent(
                            deal_id=deal.pk,
                            actor_id=owner,
                            kind="transition",
                            transition=name,
                            from_state=previous,
                            to_state=target,
                            created_at=at,
                        )
                    )
                    if name == "ask":
                        ask_number += 1
                        asks.append(
                            Ask(
                                deal_id=deal.pk,
                                number=ask_number,
                                channel="call",
                                statement="Shall we go ahead?",
                                answer="yes" if rng.random() < 0.6 else "not_yet",
                                asked_at=at,
                                asked_by_id=owner,
                            )
                        )
                        events.append(
                            DealEvent(deal_id=deal.pk, actor_id=owner, kind="ask", created_at=at)
                        )
                        if rng.random() < 0.3:  # a "not yet" objection, resolved if it moved on
                            resolved = state not in (S.ASKED, S.CLOSED_LOST)
                            objections.append(
                                Objection(
                                    deal_id=deal.pk,
                                    category=rng.choice(OBJECTION_CATEGORIES),
                                    detail="Raised when asked.",
                                    status="resolved" if resolved else "open",
                                    raised_at=at,
                                    resolved_at=at if resolved else None,
                                )
                            )
                    if name == "negotiate":
                        objections.append(
                            Objection(
                                deal_id=deal.pk,
                                category=rng.choice(OBJECTION_CATEGORIES),
                                detail="Raised in the review meeting.",
                                status="open"
                                if state == S.NEGOTIATING
                                else ("accepted_loss" if state == S.CLOSED_LOST else "resolved"),
                                raised_at=at,
                                resolved_at=None if state == S.NEGOTIATING else at,
                            )
                        )
                    if name == "send_agreement":
                        status = {
                            S.AGREEMENT_SENT: rng.choice(["sent", "delivered", "viewed"]),
                            S.FOLLOW_UP: rng.choice(["delivered", "viewed"]),
                        }.get(state, "completed")
                        contracts.append(
                            ContractVersion(
                                deal_id=deal.pk,
                                number=1,
                                status=status,
                                provider="builtin",
                                created_at=at,
                                sent_at=at,
                                completed_at=timeline[-1][2] if status == "completed" else None,
                            )
                        )
                    previous = target
                span = (last_activity - created).total_seconds()
                for _ in range(fillers):
                    events.append(
                        DealEvent(
                            deal_id=deal.pk,
                            actor_id=owner,
                            kind=rng.choice(FILLER_KINDS),
                            reason="Bench activity",
                            created_at=created + dt.timedelta(seconds=rng.uniform(0, span)),
                        )
                    )
                if rng.random() < 0.6:
                    stakeholders.append(
                        Stakeholder(
                            deal_id=deal.pk,
                            contact_id=signer_of[deal.account_id],
                            role=Stakeholder.Role.SIGNER,
                        )
                    )
            DealEvent.objects.bulk_create(events, batch_size=5000)
            DealStay.objects.bulk_create(stays, batch_size=5000)
            Ask.objects.bulk_create(asks, batch_size=BATCH)
            Objection.objects.bulk_create(objections, batch_size=BATCH)
            ContractVersion.objects.bulk_create(contracts, batch_size=BATCH)
            Stakeholder.objects.bulk_create(stakeholders, batch_size=BATCH)
        for key, rows in zip(
            totals, [events, asks, objections, contracts, stakeholders], strict=True
        ):
            totals[key] += len(rows)
        done += size
        if done % 10_000 < BATCH or done == args.deals:
            print(
                f"{done:,} deals, {totals['events']:,} events ({time.monotonic() - started:.0f}s)",
                flush=True,
            )
    # The running deal totals the dashboards read (the services keep them; bulk_create
    # bypassed them).
    from deals.services import deal_totals_rebuild

    deal_totals_rebuild()
    # Fresh statistics: without them SQLite's planner ignores the partial indexes. On
    # PostgreSQL, VACUUM also sets the visibility map that index-only scans need.
    with connection.cursor() as cursor:
        vacuum = connection.vendor == "postgresql" and not connection.in_atomic_block
        cursor.execute("VACUUM ANALYZE" if vacuum else "ANALYZE")
    print(
        f"Seeded {done:,} deals, "
        + ", ".join(f"{v:,} {k}" for k, v in totals.items())
        + f" in {time.monotonic() - started:.0f}s on {connection.vendor}."
    )


def main():
    args = parse_args()
    call_command("migrate", verbosity=0)
    seed(args)


if __name__ == "__main__":
    main()
