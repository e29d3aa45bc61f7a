"""Contract actions from 20 connections at once on PostgreSQL: one wins, the others get a
conflict in plain words (a 409 in the API), and the deal's timeline shows one event."""

from __future__ import annotations

import pytest

from contracts import services
from contracts.models import ContractVersion
from deals import services as deal_services
from deals.models import BuyingSignal, Deal, DealEvent, DealState
from deals.services import DealError
from tests.concurrency import one_winner, run_concurrently

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

Status = ContractVersion.Status


def _load(version):
    return lambda: ContractVersion.objects.select_related("deal").get(pk=version.pk)


def _contract_events(deal, action: str):
    return deal.events.filter(kind=DealEvent.Kind.CONTRACT, data__action=action)


@pytest.fixture
def draft(termed_deal, rep):
    return services.contract_generate(deal=termed_deal, by=rep)


@pytest.fixture
def sent(draft, rep):
    services.contract_send(version=draft, by=rep)
    draft.refresh_from_db()
    assert draft.status == Status.SENT
    return draft


def _sign(version):
    return services.contract_sign_builtin(
        version=version, full_name="Ann Buyer", consent=True, ip="10.0.0.1", user_agent="test"
    )


def _decline(version):
    return services.contract_decline_builtin(
        version=version, reason="Wrong term", ip="10.0.0.1", user_agent="test"
    )


def test_twenty_reps_sending_one_draft(postgres, draft, rep):
    """The draft goes out once: one "sent" event, one move to agreement sent."""
    outcomes = run_concurrently(
        lambda v: services.contract_send(version=v, by=rep), load=_load(draft)
    )
    _, errors = one_winner(outcomes, services.ContractConflict)
    assert all("only a draft can be sent" in e.message for e in errors)
    deal = Deal.objects.get(pk=draft.deal_id)
    assert deal.state == DealState.AGREEMENT_SENT
    assert _contract_events(deal, "sent").count() == 1
    assert deal.events.filter(transition="send_agreement").count() == 1


def test_twenty_reps_voiding_one_contract(postgres, sent, rep):
    """The contract is voided once; the others learn it is voided already."""
    outcomes = run_concurrently(
        lambda v: services.contract_void(version=v, by=rep, reason="Wrong price"),
        load=_load(sent),
    )
    _, errors = one_winner(outcomes, services.ContractConflict)
    assert all("Voided" in e.message for e in errors)
    assert ContractVersion.objects.get(pk=sent.pk).status == Status.VOIDED
    assert _contract_events(sent.deal, "voided").count() == 1


def test_twenty_signatures_of_one_contract(postgres, sent):
    """Twenty submits of the signing page: signed once, the deal won once."""
    outcomes = run_concurrently(_sign, load=_load(sent))
    _, errors = one_winner(outcomes, services.ContractConflict)
    assert all("can no longer be signed" in e.message for e in errors)
    deal = Deal.objects.get(pk=sent.deal_id)
    assert deal.state == DealState.CLOSED_WON
    assert _contract_events(deal, "signed").count() == 1
    assert deal.events.filter(transition="mark_won").count() == 1


def test_signing_and_declining_at_once(postgres, sent):
    """Ten signs and ten declines racing: exactly one outcome is recorded."""
    calls = iter([_sign, _decline] * 10)
    outcomes = run_concurrently(
        lambda loaded: loaded[0](loaded[1]), load=lambda: (next(calls), _load(sent)())
    )
    winner, _ = one_winner(outcomes, services.ContractConflict)
    version = ContractVersion.objects.get(pk=sent.pk)
    assert version.status == winner.result.status
    assert version.status in (Status.COMPLETED, Status.DECLINED)
    signed = _contract_events(sent.deal, "signed").count()
    declined = sent.deal.events.filter(reason__startswith="The signer declined").count()
    assert signed + declined == 1


def test_twenty_openings_of_the_signing_link(postgres, sent):
    """The buyer's link opened in twenty tabs at once: one "viewed", one buying signal."""
    outcomes = run_concurrently(
        lambda v: services.contract_view_builtin(version=v, ip="10.0.0.1", user_agent="test"),
        load=_load(sent),
    )
    assert all(o.won for o in outcomes), [o.error for o in outcomes if o.error]
    assert sorted(o.result for o in outcomes) == [False] * 19 + [True]
    assert ContractVersion.objects.get(pk=sent.pk).status == Status.VIEWED
    assert BuyingSignal.objects.filter(deal_id=sent.deal_id, kind="contract_viewed").count() == 1


def test_a_signature_and_a_loss_at_once_never_deadlock(postgres, sent, rep):
    """The buyer signs while the rep marks the deal lost: both finish (one of them may be
    refused in plain words), never a database deadlock."""

    def act(loaded):
        which, version = loaded
        if which == "sign":
            return _sign(version)
        return deal_services.deal_transition(
            deal=version.deal, transition="mark_lost", by=rep, loss_reason="price", reason="x"
        )

    calls = iter(["sign", "lose"] * 5)
    outcomes = run_concurrently(act, load=lambda: (next(calls), _load(sent)()), threads=10)
    unexpected = [o.error for o in outcomes if o.error and not isinstance(o.error, DealError)]
    assert not unexpected
    deal = Deal.objects.get(pk=sent.deal_id)
    assert deal.state in (DealState.CLOSED_WON, DealState.CLOSED_LOST)
    assert deal.events.filter(to_state__in=["closed_won", "closed_lost"]).count() == 1


def test_twenty_retries_of_a_failed_docusign_send(postgres, docusign, termed_deal, rep):
    """A send that failed is retried once: one new envelope, one "retry" event; the other
    clicks learn there is nothing left to resend."""
    docusign.fail("429", times=10, method="POST", path_contains="/envelopes")
    version = services.contract_generate(deal=termed_deal, by=rep)
    services.contract_send(version=version, by=rep)
    version.refresh_from_db()
    assert version.status == Status.FAILED
    docusign.failures.clear()
    outcomes = run_concurrently(
        lambda v: services.contract_resend(version=v, by=rep), load=_load(version)
    )
    _, errors = one_winner(outcomes, services.ContractConflict)
    assert all("there is nothing to resend" in e.message for e in errors)
    assert ContractVersion.objects.get(pk=version.pk).status == Status.SENT
    assert len(docusign.envelopes) == 1
    assert _contract_events(termed_deal, "retry").count() == 1
