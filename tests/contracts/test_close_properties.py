"""Property-based: random sequences of the real services and provider events never make the
deal, its contract versions and the signer disagree (the invariants of
`check_close_consistency`, checked after every step).

The default run is small so the suite stays fast; run thousands of steps locally with
`CLOSE_PROPERTY_EXAMPLES=100 CLOSE_PROPERTY_STEPS=30 CLOSE_PROPERTY_REPORT=1 pytest -s
tests/contracts/test_close_properties.py` (the report prints what the run went through).
"""

from __future__ import annotations

import os
import uuid

import pytest
from django.db.models import Count
from django.test import Client, override_settings
from django.urls import reverse
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from rest_framework.test import APIClient

from contracts import services
from contracts.consistency import close_disagreements
from contracts.models import OUT_STATUSES, ContractVersion
from deals import services as deal_services
from deals.models import Deal, DealEvent, DealState, Stakeholder
from tests.conftest import make_user

Status = ContractVersion.Status
EXAMPLES = int(os.environ.get("CLOSE_PROPERTY_EXAMPLES", "10"))
STEPS = int(os.environ.get("CLOSE_PROPERTY_STEPS", "30"))
STEPS_RUN: list[int] = []


class CloseMachine(RuleBasedStateMachine):
    deals = Bundle("deals")

    @initialize(target=deals)
    def team_and_first_deal(self):
        suffix = uuid.uuid4().hex[:8]
        from deals.models import Team, User

        self.team = Team.objects.create(name=f"Team {suffix}")
        self.rep = make_user(f"rep-{suffix}", self.team)
        self.manager = make_user(f"mgr-{suffix}", self.team, role=User.Role.MANAGER)
        self.account = deal_services.account_create(by=self.rep, team=self.team, name="Acme")
        self.contact = deal_services.contact_create(
            by=self.rep,
            account=self.account,
            first_name="Ann",
            last_name="Buyer",
            email="ann@acme.example",
        )
        self.bob = deal_services.contact_create(
            by=self.rep,
            account=self.account,
            first_name="Bob",
            last_name="Finance",
            email="bob@acme.example",
        )
        # The team's manager countersigns: versions have two or three signers in order.
        self.team.countersign_contracts = True
        self.team.save()
        self.api = APIClient()
        self.api.force_authenticate(self.manager)
        self.browser = Client()  # the deal page and the board post to the same view
        self.browser.force_login(self.manager)
        return self._new_deal()

    def _new_deal(self) -> int:
        self.deal_count = getattr(self, "deal_count", 0) + 1
        deal = deal_services.deal_create(
            by=self.rep, account=self.account, title="Rollout", amount="12000"
        )
        deal_services.stakeholder_add(
            deal=deal, by=self.rep, contact=self.contact, role=Stakeholder.Role.SIGNER
        )
        if self.deal_count % 2 == 0:  # every other deal has a second buyer signer
            deal_services.stakeholder_add(
                deal=deal, by=self.rep, contact=self.bob, role=Stakeholder.Role.SIGNER
            )
        return deal.pk

    def _deal(self, pk: int) -> Deal:
        return Deal.objects.get(pk=pk)

    def _versions(self, pk: int, statuses, provider: str | None = None):
        qs = ContractVersion.objects.filter(deal_id=pk, status__in=statuses).order_by("-number")
        return list(qs.filter(provider=provider) if provider else qs)

    def _try(self, func, **kwargs):
        STEPS_RUN.append(1)
        try:
            return func(**kwargs)
        except deal_services.DealError as exc:
            if os.environ.get("CLOSE_PROPERTY_DEBUG"):
                print(func.__name__, "refused:", exc.message)
            return None

    # --- deals and the rep's work ----------------------------------------------------------

    @precondition(lambda self: getattr(self, "deal_count", 0) < 3)
    @rule(target=deals)
    def another_deal(self):
        return self._new_deal()

    @rule(
        pk=deals,
        then_send=st.sampled_from(["", "builtin", "docusign"]),
        answer=st.sampled_from(["accepted", "accepted", "failed", "later"]),
    )
    def generate(self, pk, then_send, answer):
        """Generate a version; most often send it straight away, as reps do, and the provider
        usually answers at once (accepted or failed; "later" leaves it sending)."""
        version = self._try(services.contract_generate, deal=self._deal(pk), by=self.rep)
        if version is None or not then_send:
            return
        with override_settings(ESIGN_PROVIDER=then_send):
            sent = self._try(services.contract_send, version=version, by=self.rep)
        if sent is None or answer == "later":
            return
        if answer == "accepted":
            envelope = sent.envelope_id or f"env-{uuid.uuid4().hex[:10]}"
            self._try(services.contract_send_succeeded, version_id=sent.pk, envelope_id=envelope)
        else:
            self._try(services.contract_send_failed, version_id=sent.pk, message="Mail down.")

    @rule(pk=deals, provider=st.sampled_from(["builtin", "docusign"]))
    def send(self, pk, provider):
        drafts = self._versions(pk, [Status.DRAFT])
        if drafts:
            with override_settings(ESIGN_PROVIDER=provider):
                self._try(services.contract_send, version=drafts[0], by=self.rep)

    @rule(pk=deals, answer=st.sampled_from(["yes", "no", "not_yet"]))
    def ask(self, pk, answer):
        objection = {"category": "price", "detail": "Too dear"} if answer == "not_yet" else None
        self._try(
            deal_services.deal_ask_record,
            deal=self._deal(pk),
            by=self.rep,
            channel="call",
            statement="Shall we start?",
            answer=answer,
            objection=objection,
        )

    @rule(
        pk=deals,
        accept=st.booleans(),
        months=st.sampled_from([None, 12, 24]),
        amount=st.sampled_from([None, "9000", "15000"]),
    )
    def concession(self, pk, accept, months, amount):
        concession = self._try(
            deal_services.concession_propose,
            deal=self._deal(pk),
            by=self.rep,
            give="Monthly billing",
            get="A case study",
            new_term_months=months,
            new_amount=amount,
        )
        if concession is not None:
            self._try(
                deal_services.concession_decide, concession=concession, by=self.rep, accepted=accept
            )

    @rule(
        pk=deals,
        name=st.sampled_from(deal_services.TRANSITION_NAMES),
        path=st.sampled_from(["service", "api", "page"]),
    )
    def transition(self, pk, name, path):
        """Any move from the admin (the service), the API or the page/board view, as the
        manager."""
        inputs = {"reason": "Because", "loss_reason": "price"}
        if path == "api":
            STEPS_RUN.append(1)
            self.api.post(f"/api/v1/deals/{pk}/transitions/{name}/", inputs, format="json")
        elif path == "page":
            STEPS_RUN.append(1)
            state = self._deal(pk).state
            self.browser.post(
                reverse("deals:deal_transition", args=[pk, name]),
                {**inputs, "expected_state": state},
                HTTP_HX_REQUEST="true",
            )
        else:
            self._try(
                deal_services.deal_transition,
                deal=self._deal(pk),
                transition=name,
                by=self.manager,
                **inputs,
            )

    @rule(pk=deals, how=st.sampled_from(["mark_lost", "override_won", "reopen"]))
    def close_or_reopen(self, pk, how):
        """The moves that leave (or re-enter) the open states, as a manager on the page."""
        self._try(
            deal_services.deal_transition,
            deal=self._deal(pk),
            transition=how,
            by=self.manager,
            reason="Decided with the buyer",
            loss_reason="competitor",
        )

    @rule(pk=deals)
    def archive(self, pk):
        self._try(deal_services.deal_archive, deal=self._deal(pk), by=self.rep)

    @rule(pk=deals)
    def void(self, pk):
        outstanding = self._versions(pk, [*OUT_STATUSES, Status.FAILED])
        if outstanding:
            self._try(services.contract_void, version=outstanding[0], by=self.rep, reason="Typo")

    @rule(pk=deals)
    def accept_late_signature(self, pk):
        late = ContractVersion.objects.filter(
            deal_id=pk, signed_late=True, late_signature_accepted_at__isnull=True
        ).first()
        if late:
            self._try(
                services.contract_late_signature_accept,
                version=late,
                by=self.manager,
                reason="Confirmed by phone",
            )

    # --- the provider and the buyer --------------------------------------------------------

    @rule(pk=deals, ok=st.booleans())
    def provider_answers_a_send(self, pk, ok):
        sending = self._versions(pk, [Status.SENDING])
        if not sending:
            return
        version = sending[0]
        if ok:
            envelope = version.envelope_id or f"env-{uuid.uuid4().hex[:10]}"
            self._try(services.contract_send_succeeded, version_id=version.pk, envelope_id=envelope)
        else:
            self._try(services.contract_send_failed, version_id=version.pk, message="Mail down.")

    @rule(pk=deals)
    def retry_failed(self, pk):
        failed = self._versions(pk, [Status.FAILED])
        if failed:
            self._try(services.contract_resend, version=failed[0], by=self.rep)

    @rule(
        pk=deals,
        action=st.sampled_from(["view", "sign", "decline"]),
        who=st.integers(min_value=0, max_value=2),
    )
    def buyer_on_the_builtin_page(self, pk, action, who):
        """Any of the version's signers acts on their link, in their turn or not (out of
        turn is refused), including two of them one after the other."""
        versions = list(
            ContractVersion.objects.filter(deal_id=pk, provider="builtin")
            .exclude(envelope_id="")
            .order_by("-number")[:3]
        )
        for version in versions:
            meta = {"ip": "127.0.0.1", "user_agent": "test"}
            signers = list(version.signers.order_by("routing_order", "pk"))
            person = signers[min(who, len(signers) - 1)] if signers else None
            name = person.name if person else version.signer_name
            if action == "view":
                self._try(services.contract_view_builtin, version=version, signer=person, **meta)
            elif action == "sign":
                self._try(
                    services.contract_sign_builtin,
                    version=version,
                    signer=person,
                    full_name=name,
                    consent=True,
                    **meta,
                )
            else:
                self._try(
                    services.contract_decline_builtin,
                    version=version,
                    signer=person,
                    reason="Price",
                    **meta,
                )

    @rule(
        pk=deals,
        event=st.sampled_from(
            ["envelope-delivered", "envelope-completed", "envelope-declined", "envelope-voided"]
        ),
        newest=st.booleans(),
    )
    def docusign_event(self, pk, event, newest):
        """Connect events arrive for any envelope, including voided ones (late signatures)."""
        versions = list(
            ContractVersion.objects.filter(deal_id=pk, provider="docusign")
            .exclude(envelope_id="")
            .order_by("-number" if newest else "number")
        )
        version = versions[0] if versions else None
        if version is not None:
            STEPS_RUN.append(1)
            services.envelope_event_apply(
                version=version, event=event, source="webhook", signed_pdf=b"%PDF-1.4 signed"
            )

    @rule(pk=deals)
    def docusign_completes_a_withdrawn_envelope(self, pk):
        """The void reached DocuSign too late: the buyer signed a withdrawn envelope."""
        version = (
            ContractVersion.objects.filter(deal_id=pk, provider="docusign", status=Status.VOIDED)
            .exclude(envelope_id="")
            .order_by("?")
            .first()
        )
        if version is not None:
            STEPS_RUN.append(1)
            services.envelope_event_apply(
                version=version,
                event="envelope-completed",
                source="webhook",
                signed_pdf=b"%PDF-1.4 signed late",
            )

    # --- the invariants of check_close_consistency ----------------------------------------

    @invariant()
    def deals_and_contracts_agree(self):
        if not hasattr(self, "team"):
            return
        found = close_disagreements(Deal.objects.filter(team=self.team))
        assert found == [], "\n".join(map(str, found))

    @invariant()
    def won_deals_are_final_and_lost_deals_have_a_reason(self):
        if not hasattr(self, "team"):
            return
        lost = Deal.objects.filter(team=self.team, state=DealState.CLOSED_LOST)
        assert not lost.filter(loss_reason="").exists()


@pytest.mark.django_db
def test_random_sequences_keep_the_close_consistent(settings):
    """Thousands of steps locally, a few dozen in the suite: no disagreement after any step."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    STEPS_RUN.clear()
    run_state_machine_as_test(
        CloseMachine,
        settings=settings_for_run(),
    )
    assert len(STEPS_RUN) > 0
    if os.environ.get("CLOSE_PROPERTY_REPORT"):
        report = {
            "steps": len(STEPS_RUN),
            "deals": Deal.objects.count(),
            "won": Deal.objects.filter(state=DealState.CLOSED_WON).count(),
            "lost": Deal.objects.filter(state=DealState.CLOSED_LOST).count(),
            "archived": Deal.objects.filter(archived_at__isnull=False).count(),
            "late signatures": ContractVersion.objects.filter(signed_late=True).count(),
            "late accepted": ContractVersion.objects.filter(
                late_signature_accepted_at__isnull=False
            ).count(),
            "moves": dict(
                DealEvent.objects.filter(kind=DealEvent.Kind.TRANSITION)
                .values_list("transition")
                .annotate(n=Count("pk"))
            ),
            "versions by status": dict(
                ContractVersion.objects.values_list("status").annotate(n=Count("pk"))
            ),
        }
        print("\nclose property run:", report)


def settings_for_run():
    return settings(
        max_examples=EXAMPLES,
        stateful_step_count=STEPS,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
