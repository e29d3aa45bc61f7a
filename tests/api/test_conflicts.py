"""A decision someone else already made is a 409 with a plain message in the API."""

from __future__ import annotations

import pytest

from contracts import services as contract_services
from deals import services

pytestmark = pytest.mark.django_db


def _base(deal) -> str:
    return f"/api/v1/deals/{deal.pk}/"


def test_resolving_a_resolved_objection_is_a_conflict(api_client, deal, rep):
    objection = services.objection_raise(deal=deal, by=rep, category="price", detail="Too much")
    client = api_client(rep)
    url = f"{_base(deal)}objections/{objection.pk}/resolve/"
    first = client.post(url, {"resolution": "Quarterly billing"}, format="json")
    assert first.status_code == 200, first.json()
    second = client.post(url, {"resolution": "Monthly billing"}, format="json")
    assert second.status_code == 409
    assert "no longer open" in second.json()["detail"]
    objection.refresh_from_db()
    assert objection.resolution == "Quarterly billing"


def test_completing_a_done_onboarding_step_is_a_conflict(api_client, deal, manager):
    services.deal_transition(deal=deal, transition="override_won", by=manager, reason="Paper")
    step = deal.onboarding_steps.first()
    client = api_client(manager)
    url = f"{_base(deal)}onboarding/{step.pk}/done/"
    assert client.post(url, format="json").status_code == 200
    again = client.post(url, format="json")
    assert again.status_code == 409
    assert f"is already done (by {manager}" in again.json()["detail"]


def test_voiding_a_voided_contract_is_a_conflict(api_client, deal, rep, contact):
    services.stakeholder_add(deal=deal, by=rep, contact=contact, role="signer")
    version = contract_services.contract_generate(deal=deal, by=rep)
    contract_services.contract_send(version=version, by=rep, notify=False)
    client = api_client(rep)
    url = f"{_base(deal)}contracts/{version.pk}/void/"
    assert client.post(url, {"reason": "Wrong price"}, format="json").status_code == 200
    again = client.post(url, {"reason": "Wrong price"}, format="json")
    assert again.status_code == 409
    assert "only a contract out for signature can be voided" in again.json()["detail"]
