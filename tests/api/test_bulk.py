"""POST /api/v1/bulk-actions/: many deals through the same services, a result per deal."""

from __future__ import annotations

from deals import services
from deals.models import BulkJob, Deal
from tests.conftest import record_ask

URL = "/api/v1/bulk-actions/"


def test_a_bulk_move_through_the_api_reports_each_deal(
    rep, make_deal, other_rep, api_client, teammate
):
    asked, fresh = make_deal(title="Asked"), make_deal(title="Fresh")
    record_ask(asked, rep)
    other_account = services.account_create(by=other_rep, team=other_rep.team, name="Zeta")
    foreign = services.deal_create(by=other_rep, account=other_account, title="Secret")
    client = api_client(rep)
    response = client.post(
        URL,
        {
            "action": "transition",
            "transition": "negotiate",
            "deal_ids": [asked.pk, fresh.pk, foreign.pk],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["status"], body["total"], body["done"], body["refused"]) == ("done", 3, 1, 2)
    results = {r["deal_id"]: r for r in body["results"]}
    assert results[asked.pk]["outcome"] == "done"
    assert "cannot do “Negotiate”" in results[fresh.pk]["message"]
    assert results[foreign.pk] == {
        "deal_id": foreign.pk,
        "title": f"Deal #{foreign.pk}",
        "outcome": "refused",
        "message": "No such deal for you.",
    }
    assert client.get(f"{URL}{body['id']}/").json() == body
    assert api_client(teammate).get(f"{URL}{body['id']}/").status_code == 404


def test_refusals_of_the_whole_batch(rep, deal, api_client):
    client = api_client(rep)
    lost = client.post(
        URL,
        {"action": "transition", "transition": "mark_lost", "deal_ids": [deal.pk]},
        format="json",
    )
    assert lost.status_code == 409 and "loss reason" in lost.json()["detail"]
    reassign = client.post(
        URL,
        {"action": "reassign", "new_owner": rep.pk, "reason": "x", "deal_ids": [deal.pk]},
        format="json",
    )
    assert reassign.status_code == 403
    for bad in (
        {"action": "archive", "deal_ids": []},
        {"action": "archive", "deal_ids": ["1"]},
        {"action": "archive", "deal_ids": [True]},
        {"action": "delete", "deal_ids": [1]},
    ):
        response = client.post(URL, bad, format="json")
        assert response.status_code == 400, bad
    assert not BulkJob.objects.exists()
    assert Deal.objects.get(pk=deal.pk).state == "intent_spotted"


def test_many_deals_are_queued(rep, make_deal, api_client, settings):
    settings.BULK_INLINE_MAX = 1
    deals = [make_deal(title=f"D{i}") for i in range(2)]
    response = api_client(rep).post(
        URL, {"action": "archive", "deal_ids": [d.pk for d in deals]}, format="json"
    )
    assert response.status_code == 202
    assert response.json()["status"] == "queued" and response.json()["pending"] == 2
