"""POST /api/v1/deals/{id}/reassign/: the manager hands a deal on; refusals in the Error body."""

from __future__ import annotations

from deals.models import DealEvent
from tests.conftest import make_user

DEALS = "/api/v1/deals/"


def test_a_manager_reassigns_through_the_api(deal, manager, teammate, api_client):
    """200 with the deal under its new owner, and the reason in its timeline."""
    response = api_client(manager).post(
        f"{DEALS}{deal.pk}/reassign/",
        {"new_owner": teammate.pk, "reason": "Rita is on leave", "move_account": True},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["owner"]["id"] == teammate.pk
    event = DealEvent.objects.get(deal=deal, kind=DealEvent.Kind.OWNER)
    assert "Rita is on leave" in event.reason and event.data["account_moved"] is True


def test_refusals_are_errors_with_a_message(deal, rep, manager, other_rep, api_client):
    """A rep gets 403, a missing reason 400; an outsider as new owner is refused by the rule
    (409 `refused`), a stale owner is a 409 `conflict`."""
    url = f"{DEALS}{deal.pk}/reassign/"
    teammate = make_user("tess", deal.team)
    as_rep = api_client(rep).post(url, {"new_owner": teammate.pk, "reason": "x"}, format="json")
    assert as_rep.status_code == 403
    assert "team's manager" in as_rep.json()["detail"]
    client = api_client(manager)
    outsider = client.post(url, {"new_owner": other_rep.pk, "reason": "x"}, format="json")
    assert outsider.status_code == 409 and "not a member" in outsider.json()["detail"]
    assert outsider.json()["code"] == "refused"
    no_reason = client.post(url, {"new_owner": teammate.pk}, format="json")
    assert no_reason.status_code == 400
    stale = client.post(
        url,
        {"new_owner": teammate.pk, "reason": "x", "expected_owner": teammate.pk},
        format="json",
    )
    assert stale.status_code == 409 and "meanwhile" in stale.json()["detail"]
    assert stale.json()["code"] == "conflict"
    assert not DealEvent.objects.filter(deal=deal, kind=DealEvent.Kind.OWNER).exists()


def test_the_endpoint_is_in_the_schema(client, rep):
    """The OpenAPI schema documents the request body and the one Error body."""
    client.force_login(rep)
    paths = client.get("/api/schema/?format=json").json()["paths"]
    post = paths["/api/v1/deals/{id}/reassign/"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body.endswith("/ReassignRequest")
    for code in ("400", "403", "404", "409"):
        ref = post["responses"][code]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/Error")
