"""Signers racing on PostgreSQL: two buyers of the same routing order sign at the same
moment and neither signature is lost; twenty submissions of one signer's link store one."""

from __future__ import annotations

import itertools
import threading

import pytest

from contracts import consistency, services
from contracts.models import ContractSigner, ContractVersion
from deals import services as deal_services
from deals.models import DealEvent, DealState
from tests.concurrency import one_winner, run_concurrently

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

Status = ContractVersion.Status
META = {"ip": "10.0.0.9", "user_agent": "race"}


@pytest.fixture
def parallel(termed_deal, rep, account):
    """Ann and Bob sign at the same time (one routing order); no countersigner."""
    bob = deal_services.contact_create(
        by=rep, account=account, first_name="Bob", last_name="Finance", email="bob@acme.example"
    )
    deal_services.stakeholder_add(deal=termed_deal, by=rep, contact=bob, role="signer")
    version = services.contract_generate(deal=termed_deal, by=rep, routing="parallel")
    services.contract_send(version=version, by=rep, notify=False)
    version.refresh_from_db()
    assert [s.status for s in version.signers.all()] == ["due", "due"]
    return version


def test_two_parallel_signers_signing_at_once_both_count(postgres, parallel):
    people = list(parallel.signers.order_by("pk"))
    turn = itertools.count()
    lock = threading.Lock()

    def act(version):
        with lock:
            person = people[next(turn)]
        return services.contract_sign_builtin(
            version=version, signer=person, full_name=person.name, consent=True, **META
        )

    outcomes = run_concurrently(
        act,
        load=lambda: ContractVersion.objects.select_related("deal").get(pk=parallel.pk),
        threads=2,
    )
    assert all(o.won for o in outcomes), [o.error for o in outcomes]
    version = ContractVersion.objects.get(pk=parallel.pk)
    assert version.status == Status.COMPLETED and version.sealed_at
    assert set(version.signers.values_list("status", flat=True)) == {"signed"}
    assert version.deal.state == DealState.CLOSED_WON
    signed_events = version.deal.events.filter(kind=DealEvent.Kind.CONTRACT, data__action="signed")
    assert signed_events.count() == 1
    assert consistency.close_disagreements() == []


def test_twenty_submissions_of_one_signers_link_store_one_signature(postgres, parallel):
    ann = parallel.signers.get(email="ann@acme.example")
    outcomes = run_concurrently(
        lambda version: services.contract_sign_builtin(
            version=version, signer=ann, full_name="Ann Buyer", consent=True, **META
        ),
        load=lambda: ContractVersion.objects.select_related("deal").get(pk=parallel.pk),
    )
    _, errors = one_winner(outcomes, services.ContractConflict)
    assert all("already signed" in e.message for e in errors)
    assert ContractSigner.objects.get(pk=ann.pk).status == "signed"
    deal = parallel.deal
    deal.refresh_from_db()
    assert deal.state == DealState.AGREEMENT_SENT  # Bob has not signed yet
    assert deal.events.filter(data__action="signer_signed").count() == 1
