"""Create the demo world: two teams, demo logins and 46 deals with a believable history.

Every deal's history is replayed through the real services while time-machine
moves the clock, so timelines, ages and dashboard figures look like real use.
Idempotent: a second run changes nothing. It creates users whose password is
"demo", so it refuses unless DEBUG or DEMO_MODE is on (or
`--i-know-this-is-not-production` is given), and it never adds demo logins to a
database that has any other user.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import time_machine
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from deals import services
from deals.models import (
    READINESS_ITEMS,
    Account,
    Ask,
    BuyingSignal,
    ClosingTechnique,
    Deal,
    DealState,
    LossReason,
    Objection,
    QuotaPeriod,
    Stakeholder,
    Team,
    User,
)

DEMO_PASSWORD = "demo"

TEAMS = [
    ("Enterprise EMEA", "EUR", "manager1", ("Maria", "Jensen"), ["rep1", "rep2"]),
    ("Mid-Market Americas", "USD", "manager2", ("David", "Okafor"), ["rep3", "rep4"]),
]
REP_NAMES = {
    "rep1": ("Lena", "Fischer"),
    "rep2": ("Tom", "Berg"),
    "rep3": ("Sofia", "Alvarez"),
    "rep4": ("James", "Carter"),
}
COMPANIES = [
    ("Nordlicht Logistics", "Logistics"),
    ("Brightwater Health", "Healthcare"),
    ("Kestrel Manufacturing", "Manufacturing"),
    ("Alpine Insurance Group", "Insurance"),
    ("Harbor & Finch Retail", "Retail"),
    ("Quanta Biolabs", "Life sciences"),
    ("Meridian Energy", "Energy"),
    ("Oakridge University", "Education"),
    ("Vela Payments", "Fintech"),
    ("Copperleaf Foods", "Food & beverage"),
    ("Stellar Travel", "Travel"),
    ("Granite Legal LLP", "Legal services"),
    ("Bluefin Media", "Media"),
    ("Ironbridge Construction", "Construction"),
    ("Lumen Telecom", "Telecommunications"),
    ("Silverline Hotels", "Hospitality"),
    ("Pinecrest Dental", "Healthcare"),
    ("Redwood Analytics", "Software"),
    ("Atlas Freight", "Logistics"),
    ("Northwind Traders", "Wholesale"),
    ("Evergreen Housing", "Real estate"),
    ("Cobalt Robotics", "Manufacturing"),
    ("Summit Outdoor", "Retail"),
]
PRODUCTS = [
    ("Closing Suite rollout", 48000),
    ("Contract automation", 24000),
    ("Sales analytics add-on", 12000),
    ("Team licences", 36000),
    ("Enterprise platform", 120000),
    ("Pilot programme", 8000),
    ("Onboarding services", 15000),
    ("Annual renewal + upsell", 30000),
]
CONTACTS = [
    ("Anna", "Keller", "Head of Operations"),
    ("Marcus", "Lindqvist", "CFO"),
    ("Priya", "Raman", "VP Sales"),
    ("Jonas", "Weber", "Procurement lead"),
    ("Chloe", "Martin", "IT Director"),
    ("Ethan", "Brooks", "CEO"),
    ("Fatima", "Haddad", "Revenue Operations"),
    ("Luca", "Romano", "Legal counsel"),
]
SIGNALS = [
    ("explicit", "“How fast could we get started if we signed this month?”"),
    ("case_study", "Asked three detailed questions about the logistics case study."),
    ("implementation", "Wanted to know who does the data migration and how long it takes."),
    ("pricing", "Asked whether annual billing comes with a discount."),
    ("timeline", "Needs it live before the Q3 sales kickoff."),
    ("stakeholder", "Introduced us to their CFO for the budget conversation."),
]
OBJECTIONS = [
    ("price", False, "Budget is 15% below the quote.", "Moved to quarterly billing, same total."),
    (
        "timeline",
        True,
        "“Let's revisit after the board meeting.”",
        "Agreed a decision date after the board meeting.",
    ),
    (
        "authority",
        False,
        "The CFO has to sign off on anything over 50k.",
        "Held a review meeting with the CFO.",
    ),
    (
        "competitor",
        False,
        "Comparing us with a cheaper tool.",
        "Showed the total cost incl. implementation.",
    ),
    (
        "risk",
        False,
        "Worried about the rollout disrupting the team.",
        "Offered a phased rollout with a pilot team.",
    ),
    (
        "terms",
        False,
        "Legal wants a 30-day termination clause.",
        "Accepted 60 days in exchange for an annual term.",
    ),
]
CONCESSIONS = [
    ("Month-to-month for the first quarter", "Setup fee of 2,000"),
    ("10% discount", "Three-year term"),
    ("Free onboarding workshop", "A video case study"),
    ("Start date moved to the 1st", "Signature this week"),
]
# Target state of each demo deal, in order (46 deals).
PLAN = (
    [DealState.INTENT_SPOTTED] * 8
    + [DealState.ASKED] * 6
    + [DealState.AGREEMENT_SENT] * 7
    + [DealState.NEGOTIATING] * 7
    + [DealState.FOLLOW_UP] * 6
    + [DealState.CLOSED_WON] * 7
    + [DealState.CLOSED_LOST] * 5
)


#: Every login the demo creates.
DEMO_USERNAMES = ["admin", *(t[2] for t in TEAMS), *(rep for t in TEAMS for rep in t[4])]


class Command(BaseCommand):
    help = (
        "Create demo teams, logins (password 'demo') and deals. Idempotent. Only with DEBUG "
        "or DEMO_MODE on, and only on a database without other users."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--i-know-this-is-not-production",
            action="store_true",
            dest="not_production",
            help="Seed even though DEBUG and DEMO_MODE are off (a staging or review copy).",
        )

    def handle(self, *args, **options):
        self._refuse_outside_a_demo(not_production=options["not_production"])
        users = self._users()
        if Deal.objects.filter(team__name__in=[t[0] for t in TEAMS]).exists():
            self.stdout.write("Demo data already present; nothing to do.")
            return
        rng = random.Random(42)
        now = timezone.now()
        self.today = timezone.localdate()
        for i, target in enumerate(PLAN):
            team_index = i % 2
            rep = users[TEAMS[team_index][4][(i // 2) % 2]]
            manager = users[TEAMS[team_index][2]]
            started = now - dt.timedelta(days=rng.randint(25, 110), hours=rng.randint(0, 8))
            with transaction.atomic():
                self._deal(i, target, rep, manager, started, rng)
        with transaction.atomic():
            self._countersigned_deal(users)
        # The replayed history planned follow-ups in the past; only future ones should go out.
        from followups.services import reminders_settle_past

        reminders_settle_past(before=now, reason="planned before the demo data was created")
        self._demo_room(users["rep1"])
        self._demo_quotas(users)
        self.stdout.write(self.style.SUCCESS(f"Seeded {len(PLAN)} demo deals."))

    def _demo_room(self, rep: User) -> None:
        """One open deal of rep1 gets a close plan and a buyer room link for its signer (the
        link is printed here and on the deal page, in the plan panel)."""
        from rooms import services as rooms

        deal = (
            Deal.objects.filter(owner=rep, state__in=[DealState.NEGOTIATING, DealState.ASKED])
            .order_by("pk")
            .first()
        )
        signer = deal and deal.stakeholders.filter(role=Stakeholder.Role.SIGNER).first()
        if deal is None or signer is None or rooms.plan_template_for(deal) is None:
            return
        with transaction.atomic():
            steps = rooms.plan_create_from_template(deal=deal, by=rep)
            rooms.plan_step_update(step=steps[0], by=rep, status="done")
            # One buyer step ran late: the deal page, My day and coaching show it as slipped.
            late = next(s for s in steps if s.side == "buyer")
            rooms.plan_step_update(step=late, by=rep, due_date=self.today - dt.timedelta(days=2))
            rooms.plan_outcome_add(deal=deal, by=rep, text="Contracts signed within 7 days")
            rooms.deal_need_add(deal=deal, by=rep, text="Reporting for the finance team")
            link = rooms.room_link_issue(deal=deal, by=rep, contact=signer.contact)
            question = rooms.room_question_ask(
                link=link, text="Can our auditors get read-only access during the security review?"
            )
            rooms.room_question_answer(
                question=question,
                by=rep,
                answer="Yes: I will send two auditor logins with the security pack this week.",
            )
        self.stdout.write(f"Buyer room of “{deal}” for {signer.contact}: {rooms.room_url(link)}")

    def _demo_quotas(self, users) -> None:
        """Every rep gets a quota for this quarter and this month (set by the team's manager),
        so the quotas page, the dashboard's attainment and My day's "My quota" show figures."""
        for _team, currency, manager_name, _names, reps in TEAMS:
            for n, rep_name in enumerate(reps):
                for kind, amount in ((QuotaPeriod.QUARTER, 240000), (QuotaPeriod.MONTH, 80000)):
                    services.quota_set(
                        by=users[manager_name],
                        rep=users[rep_name],
                        period_kind=kind,
                        period_start=self.today,
                        currency=currency,
                        amount=amount + 20000 * n,
                        reason="Demo quota",
                    )

    def _refuse_outside_a_demo(self, *, not_production: bool) -> None:
        """Demo logins share a published password: never on a real installation."""
        if not (settings.DEBUG or settings.DEMO_MODE or not_production):
            raise CommandError(
                "Refusing to seed demo data: DEBUG and DEMO_MODE are off, so this looks like "
                "production, and the demo creates logins whose password is “demo”. Set "
                "DEMO_MODE=1 for a demo installation, or pass "
                "--i-know-this-is-not-production for a staging copy."
            )
        others = User.objects.exclude(username__in=DEMO_USERNAMES).order_by("pk")
        # A user with a demo name but a password of its own (a real "admin") is real too.
        real = [
            user.username
            for user in User.objects.filter(username__in=DEMO_USERNAMES).order_by("pk")
            if not user.check_password(DEMO_PASSWORD)
        ]
        count = others.count() + len(real)
        if count:
            real += list(others.values_list("username", flat=True)[:3])
            shown = ", ".join(f"“{name}”" for name in real[:3])
            raise CommandError(
                f"Refusing to seed demo data: this database has {count} user(s) that are "
                f"not demo logins ({shown}{', …' if count > 3 else ''}). Demo logins are "
                "never added next to real ones; seed an empty database instead."
            )

    # --- people --------------------------------------------------------------

    def _users(self) -> dict[str, User]:
        users = {}
        admin, created = User.objects.get_or_create(
            username="admin",
            defaults={
                "is_staff": True,
                "is_superuser": True,
                "email": "admin@example.com",
                "first_name": "Ada",
                "last_name": "Admin",
            },
        )
        if created:
            admin.set_password(DEMO_PASSWORD)
            admin.save()
        users["admin"] = admin
        for team_name, currency, manager_name, (first, last), reps in TEAMS:
            team, _ = Team.objects.get_or_create(name=team_name, defaults={"currency": currency})
            tz = "Europe/Berlin" if currency == "EUR" else "America/New_York"
            manager = self._user(manager_name, first, last, team, User.Role.MANAGER, tz)
            if team.account_manager_id is None:
                team.account_manager = manager
                team.save(update_fields=["account_manager"])
            users[manager_name] = manager
            for rep_name in reps:
                users[rep_name] = self._user(
                    rep_name, *REP_NAMES[rep_name], team, User.Role.REP, tz
                )
        return users

    def _user(self, username, first, last, team, role, tz) -> User:
        user, created = User.objects.get_or_create(
            username=username,
            defaults={
                "first_name": first,
                "last_name": last,
                "team": team,
                "role": role,
                "email": f"{username}@example.com",
                "time_zone": tz,
            },
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        return user

    # --- deals -----------------------------------------------------------------

    def _deal(self, i, target, rep, manager, started, rng):
        company, industry = COMPANIES[i % len(COMPANIES)]
        product, base_amount = PRODUCTS[i % len(PRODUCTS)]
        clock = {"t": started}

        def at(days: float = 0.0):
            clock["t"] = clock["t"] + dt.timedelta(days=days, minutes=rng.randint(5, 300))
            return time_machine.travel(clock["t"], tick=False)

        with at():
            account = Account.objects.filter(team=rep.team, name=company).first()
            if account is None:
                account = services.account_create(
                    by=rep,
                    team=rep.team,
                    name=company,
                    industry=industry,
                    website=company.lower().split()[0] + ".example",
                )
                for first, last, title in rng.sample(CONTACTS, 3):
                    services.contact_create(
                        by=rep,
                        account=account,
                        first_name=first,
                        last_name=last,
                        job_title=title,
                        email=f"{first.lower()}.{last.lower()}@{account.website}",
                    )
            amount = Decimal(base_amount) * Decimal(rng.choice([1, 1, 1.5, 2, 0.75]))
            deal = services.deal_create(
                by=rep,
                account=account,
                title=f"{company}: {product}",
                amount=amount.quantize(Decimal("1")),
                # Dates the rep plans are relative to the real today, not the replayed clock.
                expected_close_date=self.today + dt.timedelta(days=rng.randint(5, 75)),
                next_step=rng.choice(
                    [
                        "Send recap email",
                        "Book review meeting",
                        "Call the CFO",
                        "Confirm signer",
                        "Share case study",
                    ]
                ),
                next_step_due=self.today + dt.timedelta(days=rng.randint(-4, 21)),
                identified_pain="Deals stall at the contract stage; no visibility for managers.",
                metrics="Cut time-to-signature from 21 to 7 days.",
            )
            contacts = list(account.contacts.all())
            services.stakeholder_add(
                deal=deal, by=rep, contact=contacts[0], role=Stakeholder.Role.DECISION_MAKER
            )
            services.stakeholder_add(
                deal=deal, by=rep, contact=contacts[1], role=Stakeholder.Role.SIGNER
            )
            services.stakeholder_add(
                deal=deal, by=rep, contact=contacts[2], role=Stakeholder.Role.CHAMPION
            )

        for kind, note in rng.sample(SIGNALS, rng.randint(1, 3)):
            with at(rng.uniform(1, 4)):
                services.buying_signal_record(
                    deal=deal,
                    by=rep,
                    kind=kind,
                    note=note,
                    channel=rng.choice(["call", "meeting", "email"]),
                )
        with at(rng.uniform(0.5, 3)):
            ticks = rng.randint(2, 6) if target != DealState.INTENT_SPOTTED else rng.randint(1, 5)
            services.deal_readiness_set(
                deal=deal,
                by=rep,
                items={field: n < ticks for n, (field, _) in enumerate(READINESS_ITEMS)},
            )
            services.deal_technique_choose(
                deal=deal, by=rep, technique=rng.choice(ClosingTechnique.values)
            )
        if target == DealState.INTENT_SPOTTED:
            return

        objection = OBJECTIONS[i % len(OBJECTIONS)]
        # A second ask made while negotiating keeps the deal there (the rep then sends the
        # agreement), so deals that stop at "asked" got their yes on the first ask.
        needs_second_ask = target in (DealState.NEGOTIATING, DealState.CLOSED_LOST) or (
            i % 3 == 0 and target != DealState.ASKED
        )
        with at(rng.uniform(2, 6)):
            services.deal_ask_record(
                deal=deal,
                by=rep,
                channel=rng.choice(["call", "meeting"]),
                statement="Based on what we agreed, shall we get the paperwork started?",
                answer=Ask.Answer.NOT_YET if needs_second_ask else Ask.Answer.YES,
                objection={
                    "category": objection[0],
                    "is_stall": objection[1],
                    "detail": objection[2],
                },
            )
        if target == DealState.NEGOTIATING:
            if i % 2:
                with at(rng.uniform(1, 3)):
                    give, get = CONCESSIONS[i % len(CONCESSIONS)]
                    services.concession_propose(deal=deal, by=rep, give=give, get=get)
            return
        if target == DealState.CLOSED_LOST:
            with at(rng.uniform(3, 10)):
                reason = [
                    LossReason.PRICE,
                    LossReason.COMPETITOR,
                    LossReason.NO_DECISION,
                    LossReason.TIMING,
                    LossReason.NO_BUDGET,
                ][i % 5]
                services.deal_transition(
                    deal=deal,
                    transition="mark_lost",
                    by=rep,
                    loss_reason=reason,
                    reason="Thanked them for their time; they will reach out when budget reopens.",
                )
            return
        if needs_second_ask:
            with at(rng.uniform(2, 5)):
                open_objection = deal.objections.filter(status=Objection.Status.OPEN).first()
                services.objection_resolve(
                    objection=open_objection, by=rep, resolution=objection[3]
                )
                give, get = CONCESSIONS[i % len(CONCESSIONS)]
                concession = services.concession_propose(deal=deal, by=rep, give=give, get=get)
                services.concession_decide(concession=concession, by=rep, accepted=True)
            with at(rng.uniform(1, 3)):
                services.deal_ask_record(
                    deal=deal,
                    by=rep,
                    channel="meeting",
                    statement="With the phased rollout agreed, are you ready to go ahead?",
                    answer=Ask.Answer.YES,
                )
        if target == DealState.ASKED:
            return

        with at(rng.uniform(1, 3)):
            self._send_contract(deal, rep)
        if target == DealState.AGREEMENT_SENT:
            return
        with at(rng.uniform(2, 4)):
            services.deal_transition(
                deal=deal,
                transition="follow_up",
                by=rep,
                reason="Contract is with the signer; friendly reminders on.",
            )
        if target == DealState.FOLLOW_UP:
            return
        with at(rng.uniform(2, 6)):
            services.buying_signal_record(
                deal=deal,
                by=rep,
                kind=BuyingSignal.Kind.EXPLICIT,
                channel="email",
                note="“Legal is happy, signing today.”",
            )
            if i % 2:
                services.deal_transition(
                    deal=deal,
                    transition="override_won",
                    by=manager,
                    reason="Signed on paper at the customer's office; scan attached in the DMS.",
                )
            else:
                self._complete_signature(deal)

    def _countersigned_deal(self, users) -> None:
        """A contract out with two buyer signers in sequence, then Maria Jensen (the team's
        manager) countersigns: the team countersigns its contracts from now on. The deal
        page shows each signer's link as their turn comes (rep1 / manager1, password demo)."""
        from contracts import services as contract_services

        rep, manager = users["rep1"], users["manager1"]
        team = rep.team
        team.countersign_contracts = True
        team.countersigner = manager
        team.save(update_fields=["countersign_contracts", "countersigner"])
        account = services.account_create(
            by=rep,
            team=team,
            name="Nordlicht Logistik AG",
            industry="Logistics",
            website="nordlicht.example",
        )
        people = [
            ("Greta", "Lindqvist", "Head of Procurement"),
            ("Jonas", "Weber", "CFO"),
        ]
        contacts = [
            services.contact_create(
                by=rep,
                account=account,
                first_name=first,
                last_name=last,
                job_title=title,
                email=f"{first.lower()}.{last.lower()}@nordlicht.example",
            )
            for first, last, title in people
        ]
        deal = services.deal_create(
            by=rep,
            account=account,
            title="Nordlicht Logistik AG: Closing CRM Enterprise",
            amount=Decimal("96000"),
            expected_close_date=self.today + dt.timedelta(days=10),
            next_step="Greta signs, then Jonas; Maria countersigns",
            next_step_due=self.today + dt.timedelta(days=3),
            identified_pain="Contracts need two signatures on their side and ours.",
        )
        services.stakeholder_add(
            deal=deal, by=rep, contact=contacts[1], role=Stakeholder.Role.DECISION_MAKER
        )
        for contact in contacts:  # procurement signs first, then the CFO
            services.stakeholder_add(
                deal=deal, by=rep, contact=contact, role=Stakeholder.Role.SIGNER
            )
        services.deal_ask_record(
            deal=deal,
            by=rep,
            channel="meeting",
            statement="Shall we put the contract in front of Greta and Jonas this week?",
            answer=Ask.Answer.YES,
        )
        version = contract_services.contract_generate(deal=deal, by=rep, routing="sequence")
        contract_services.contract_send(version=version, by=rep, notify=False, provider="builtin")

    def _send_contract(self, deal, rep):
        """Generate the contract PDF and send it with the built-in provider (no email: the
        demo replays history; the deal page shows the signer's link)."""
        from contracts import services as contract_services

        version = contract_services.contract_generate(deal=deal, by=rep)
        contract_services.contract_send(version=version, by=rep, notify=False, provider="builtin")
        deal.refresh_from_db()

    def _complete_signature(self, deal):
        """The signer signs through the built-in signing service (stamped PDF, audit page)."""
        from contracts import services as contract_services
        from contracts.models import OUT_STATUSES

        version = deal.contract_versions.filter(status__in=OUT_STATUSES).order_by("-number")[0]
        for person in version.signers.order_by("routing_order", "pk"):
            contract_services.contract_view_builtin(
                version=version,
                signer=person,
                ip="203.0.113.24",
                user_agent="Mozilla/5.0 (demo seed)",
            )
            contract_services.contract_sign_builtin(
                version=version,
                signer=person,
                full_name=person.name,
                consent=True,
                ip="203.0.113.24",
                user_agent="Mozilla/5.0 (demo seed)",
            )
        deal.refresh_from_db()
