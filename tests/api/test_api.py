"""REST API v1: the same rules as the pages, for scripts holding a token."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from contracts.models import ContractVersion
from deals import services
from deals.models import Deal, DealEvent, DealState

pytestmark = pytest.mark.django_db

DEALS = "/api/v1/deals/"


def _transition(client, deal, name, **body):
    return client.post(f"{DEALS}{deal.pk}/transitions/{name}/", body, format="json")


# --- authentication --------------------------------------------------------------------


def test_requests_without_a_token_are_refused(deal):
    """No credentials, or a made-up token: 401, nothing listed."""
    assert APIClient().get(DEALS).status_code == 401
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get(DEALS).status_code == 401


def test_drf_create_token_command_gives_a_working_token(rep, deal):
    """`manage.py drf_create_token USER` creates the token a script then sends."""
    call_command("drf_create_token", rep.username)
    token = Token.objects.get(user=rep)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    response = client.get(DEALS)
    assert response.status_code == 200
    assert [d["id"] for d in response.json()["results"]] == [deal.pk]


def test_admin_revokes_a_token_in_the_admin(client, rep, admin_user, api_client, deal):
    """Deleting the token in the admin locks the script out at once."""
    script = api_client(rep)
    assert script.get(DEALS).status_code == 200
    client.force_login(admin_user)
    url = reverse("admin:authtoken_tokenproxy_delete", args=[rep.pk])
    response = client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert not Token.objects.filter(user=rep).exists()
    assert script.get(DEALS).status_code == 401


def test_a_deactivated_user_token_stops_working(rep, api_client, deal):
    """An inactive user's token is refused."""
    script = api_client(rep)
    rep.is_active = False
    rep.save()
    assert script.get(DEALS).status_code == 401


# --- deals: list, filters, pagination, visibility -------------------------------------------


def test_deal_list_filters_by_state_owner_account_and_text(
    rep, teammate, manager, account, make_deal, api_client
):
    """The list takes the deal list page's filters; a manager sees the team."""
    other_account = services.account_create(by=rep, team=rep.team, name="Globex")
    mine = make_deal(title="Acme rollout")
    theirs = make_deal(title="Acme pilot", by=teammate, owner=teammate)
    globex = make_deal(title="Globex renewal", account=other_account)
    services.deal_transition(deal=mine, transition="ask", by=rep)

    client = api_client(manager)
    ids = lambda params: sorted(d["id"] for d in client.get(DEALS, params).json()["results"])  # noqa: E731
    assert ids({}) == sorted([mine.pk, theirs.pk, globex.pk])
    assert ids({"state": "asked"}) == [mine.pk]
    assert ids({"state": "open"}) == sorted([mine.pk, theirs.pk, globex.pk])
    assert ids({"owner": teammate.pk}) == [theirs.pk]
    assert ids({"account": other_account.pk}) == [globex.pk]
    assert ids({"q": "pilot"}) == [theirs.pk]
    assert api_client(teammate).get(DEALS, {"owner": "me"}).json()["results"][0]["id"] == theirs.pk


def test_malformed_filters_are_a_clear_400(rep, api_client):
    """A filter that cannot be right is refused with the field named."""
    response = api_client(rep).get(DEALS, {"state": "won-ish", "close": "2026-13"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert set(response.json()["fields"]) == {"state", "close"}


def test_cursor_pagination_walks_every_deal_once(rep, make_deal, api_client):
    """Cursor pages: a `next` link until the end, no deal twice, newest first."""
    made = [make_deal(title=f"Deal {n}").pk for n in range(7)]
    client = api_client(rep)
    url, seen = f"{DEALS}?page_size=3", []
    while url:
        page = client.get(url).json()
        assert len(page["results"]) <= 3
        seen += [d["id"] for d in page["results"]]
        url = page["next"]
    assert seen == sorted(made, reverse=True)


def test_another_teams_deal_is_404_everywhere(rep, other_rep, deal, api_client):
    """Another team's deal does not exist for you: detail, sub-resources and moves are 404."""
    client = api_client(other_rep)
    assert client.get(DEALS).json()["results"] == []
    for suffix in ["", "timeline/", "signals/", "asks/", "contracts/", "transitions/"]:
        assert client.get(f"{DEALS}{deal.pk}/{suffix}").status_code == 404, suffix
    assert _transition(client, deal, "ask").status_code == 404
    assert client.patch(f"{DEALS}{deal.pk}/", {"title": "x"}, format="json").status_code == 404
    assert client.post(f"{DEALS}{deal.pk}/archive/", {}, format="json").status_code == 404
    deal.refresh_from_db()
    assert deal.state == DealState.INTENT_SPOTTED and deal.title == "Acme rollout"


# --- deals: create and update -----------------------------------------------------------------


def test_create_a_deal_through_the_service(rep, account, api_client):
    """POST opens the deal at intent spotted, owned by the caller, with its created event."""
    response = api_client(rep).post(
        DEALS,
        {"account": account.pk, "title": "New rollout", "amount": "2500.50"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["state"] == "intent_spotted" and body["owner"]["id"] == rep.pk
    deal = Deal.objects.get(pk=body["id"])
    assert deal.amount == Decimal("2500.50")
    assert deal.events.filter(kind=DealEvent.Kind.CREATED, actor=rep).count() == 1


def test_create_refuses_another_teams_account_and_other_owners(
    rep, teammate, other_rep, account, api_client
):
    """Accounts of other teams are unknown (404); a rep cannot open deals for others (403)."""
    foreign = services.account_create(by=other_rep, team=other_rep.team, name="Foreign")
    client = api_client(rep)
    response = client.post(DEALS, {"account": foreign.pk, "title": "Sneaky"}, format="json")
    assert response.status_code == 404 and "account" in response.json()["fields"]
    response = client.post(
        DEALS, {"account": account.pk, "title": "For Tim", "owner": teammate.pk}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["detail"] == "Only a manager can open deals for someone else."
    assert not Deal.objects.filter(title__in=["Sneaky", "For Tim"]).exists()


def test_manager_opens_a_deal_for_a_rep(manager, rep, account, api_client):
    """A manager may open a deal owned by one of the team's reps."""
    response = api_client(manager).post(
        DEALS, {"account": account.pk, "title": "For Rita", "owner": rep.pk}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["owner"]["id"] == rep.pk


def test_patch_edits_details_and_records_the_change(rep, deal, api_client):
    """PATCH goes through deal_update: the timeline records old → new."""
    response = api_client(rep).patch(
        f"{DEALS}{deal.pk}/",
        {"title": "Acme rollout, phase 1", "amount": "15000", "next_step": "Call CFO"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    deal.refresh_from_db()
    assert deal.title == "Acme rollout, phase 1" and deal.amount == Decimal("15000")
    event = deal.events.get(kind=DealEvent.Kind.EDITED)
    assert event.actor == rep
    assert event.data["changes"]["title"] == ["Acme rollout", "Acme rollout, phase 1"]


def test_patch_cannot_touch_the_state(rep, deal, api_client):
    """The state is not an editable field: it is refused with a pointer to transitions."""
    response = api_client(rep).patch(
        f"{DEALS}{deal.pk}/", {"state": "closed_won", "title": "Won?"}, format="json"
    )
    assert response.status_code == 400
    assert "transitions" in response.json()["fields"]["state"][0]
    deal.refresh_from_db()
    assert deal.state == DealState.INTENT_SPOTTED and deal.title == "Acme rollout"


def test_a_teammate_may_read_but_not_edit(teammate, deal, api_client):
    """Reps see their team's deals (team setting) but only the owner or manager changes them."""
    client = api_client(teammate)
    assert client.get(f"{DEALS}{deal.pk}/").status_code == 200
    response = client.patch(f"{DEALS}{deal.pk}/", {"title": "Mine now"}, format="json")
    assert response.status_code == 403
    assert (
        response.json()["detail"]
        == "Only the deal's owner or the team's manager can move this deal."
    )


def test_deals_are_never_deleted_only_archived(rep, deal, api_client):
    """DELETE and PUT do not exist; archive hides the deal and keeps the row and its history."""
    client = api_client(rep)
    assert client.delete(f"{DEALS}{deal.pk}/").status_code == 405
    assert client.put(f"{DEALS}{deal.pk}/", {"title": "x"}, format="json").status_code == 405
    response = client.post(f"{DEALS}{deal.pk}/archive/", {"reason": "Duplicate"}, format="json")
    assert response.status_code == 200 and response.json()["archived_at"]
    assert client.get(f"{DEALS}{deal.pk}/").status_code == 404
    assert client.get(DEALS).json()["results"] == []
    archived = Deal.objects.get(pk=deal.pk)
    assert archived.archived_at is not None
    assert archived.events.filter(reason="Duplicate", data__archived=True).exists()


def test_accounts_and_contacts_are_archived_not_deleted(rep, account, contact, api_client):
    """Accounts and contacts have an archive action and no DELETE."""
    client = api_client(rep)
    assert client.delete(f"/api/v1/accounts/{account.pk}/").status_code == 405
    assert client.delete(f"/api/v1/contacts/{contact.pk}/").status_code == 405
    assert client.post(f"/api/v1/contacts/{contact.pk}/archive/").status_code == 200
    assert client.get(f"/api/v1/contacts/{contact.pk}/").status_code == 404
    assert client.post(f"/api/v1/accounts/{account.pk}/archive/").status_code == 200
    account.refresh_from_db()
    contact.refresh_from_db()
    assert account.archived_at and contact.archived_at


def test_an_account_with_open_deals_is_not_archived(rep, account, deal, api_client):
    """Archiving an account with open deals is refused in plain words."""
    response = api_client(rep).post(f"/api/v1/accounts/{account.pk}/archive/")
    assert response.status_code == 409
    assert "open deals" in response.json()["detail"]


def test_accounts_and_contacts_crud(rep, other_rep, api_client):
    """Create an account and a contact; another team sees neither."""
    client = api_client(rep)
    response = client.post("/api/v1/accounts/", {"name": "Initech"}, format="json")
    assert response.status_code == 201
    account_id = response.json()["id"]
    duplicate = client.post("/api/v1/accounts/", {"name": "initech"}, format="json")
    assert duplicate.status_code == 409
    assert duplicate.json()["detail"] == "Your team already has an account named “initech”."
    response = client.post(
        "/api/v1/contacts/",
        {"account": account_id, "first_name": "Peter", "last_name": "Gibbons"},
        format="json",
    )
    assert response.status_code == 201
    contact_id = response.json()["id"]
    assert client.get(f"/api/v1/contacts/{contact_id}/").json()["last_name"] == "Gibbons"
    stranger = api_client(other_rep)
    assert stranger.get(f"/api/v1/accounts/{account_id}/").status_code == 404
    assert stranger.get(f"/api/v1/contacts/{contact_id}/").status_code == 404
    response = stranger.post(
        "/api/v1/contacts/", {"account": account_id, "first_name": "X", "last_name": "Y"}
    )
    assert response.status_code == 404 and "account" in response.json()["fields"]


# --- transitions ------------------------------------------------------------------------------


def test_transition_goes_through_the_service_with_audit(rep, deal, api_client):
    """POST /transitions/ask/ moves the deal and writes the transition event with the actor."""
    response = _transition(api_client(rep), deal, "ask", reason="Asked on the call")
    assert response.status_code == 200
    assert response.json()["state"] == "asked"
    event = deal.events.get(kind=DealEvent.Kind.TRANSITION)
    assert (event.actor, event.from_state, event.to_state) == (rep, "intent_spotted", "asked")


def test_guards_hold_through_the_api(rep, deal, api_client):
    """No contract, no sending; no loss reason, no closing as lost: 409 with the reason."""
    client = api_client(rep)
    response = _transition(client, deal, "send_agreement")
    assert response.status_code == 409
    assert response.json()["detail"] == (
        "Generate a contract first: nothing can go out for signature."
    )
    response = _transition(client, deal, "mark_lost")
    assert response.status_code == 409
    assert "loss reason" in response.json()["detail"]
    ContractVersion.objects.create(deal=deal, number=1)
    assert _transition(client, deal, "send_agreement").json()["state"] == "agreement_sent"
    response = _transition(client, deal, "mark_won")
    assert response.status_code == 409
    assert response.json()["detail"].startswith("No completed signature yet.")
    response = _transition(client, deal, "mark_lost", loss_reason="price", reason="Too dear")
    assert response.status_code == 200 and response.json()["state"] == "closed_lost"


def test_manager_only_moves_are_403_for_reps(rep, manager, deal, api_client):
    """Override to won and reopen are for managers; a rep gets 403 and nothing changes."""
    rep_client, manager_client = api_client(rep), api_client(manager)
    response = _transition(rep_client, deal, "override_won", reason="Signed on paper")
    assert response.status_code == 403
    assert response.json()["detail"] == "Only the team's manager can do this."
    _transition(rep_client, deal, "mark_lost", loss_reason="timing")
    assert _transition(rep_client, deal, "reopen", reason="Back").status_code == 403
    response = _transition(manager_client, deal, "reopen", reason="They came back")
    assert response.status_code == 200 and response.json()["state"] == "intent_spotted"
    response = _transition(manager_client, deal, "override_won", reason="Signed on paper")
    assert response.status_code == 200 and response.json()["state"] == "closed_won"


def test_stale_state_and_unknown_moves(rep, deal, api_client):
    """expected_state that no longer holds is a 409 conflict; an unknown move is a 404."""
    client = api_client(rep)
    _transition(client, deal, "ask")
    response = _transition(client, deal, "negotiate", expected_state="intent_spotted")
    assert response.status_code == 409
    assert "in another tab or window" in response.json()["detail"]
    assert _transition(client, deal, "teleport").status_code == 404
    response = _transition(client, deal, "follow_up")
    assert response.status_code == 409 and "cannot do" in response.json()["detail"]


def test_transition_list_shows_moves_and_blockers(rep, deal, api_client):
    """The moves on offer from the current state, each with what blocks it."""
    rows = api_client(rep).get(f"{DEALS}{deal.pk}/transitions/").json()
    by_name = {row["name"]: row for row in rows}
    assert by_name["ask"]["allowed"] is True
    assert by_name["send_agreement"]["blockers"] == [
        "Generate a contract first: nothing can go out for signature."
    ]
    assert "override_won" not in by_name  # managers only


# --- what happens on a deal -------------------------------------------------------------------


def test_signals_asks_objections_concessions_and_stakeholders(rep, deal, contact, api_client):
    """Everything a rep records on the deal page can be recorded and read through the API."""
    client = api_client(rep)
    base = f"{DEALS}{deal.pk}"
    response = client.post(
        f"{base}/signals/", {"kind": "pricing", "note": "Asked for volume pricing"}, format="json"
    )
    assert response.status_code == 201
    assert client.get(f"{base}/signals/").json()["results"][0]["kind"] == "pricing"

    response = client.post(
        f"{base}/asks/",
        {"channel": "call", "statement": "Shall we start on the 1st?", "answer": "not_yet"},
        format="json",
    )
    assert response.status_code == 409
    assert "objection" in response.json()["detail"]
    response = client.post(
        f"{base}/asks/",
        {
            "channel": "call",
            "statement": "Shall we start on the 1st?",
            "answer": "not_yet",
            "objection": {"category": "price", "detail": "Over budget"},
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    deal.refresh_from_db()
    assert deal.state == DealState.NEGOTIATING
    objection = client.get(f"{base}/objections/").json()["results"][0]
    response = client.post(
        f"{base}/objections/{objection['id']}/resolve/",
        {"resolution": "Quarterly billing"},
        format="json",
    )
    assert response.status_code == 200 and response.json()["status"] == "resolved"

    response = client.post(
        f"{base}/concessions/", {"give": "5% off", "get": "3-year term"}, format="json"
    )
    assert response.status_code == 201
    concession_id = response.json()["id"]
    response = client.post(
        f"{base}/concessions/{concession_id}/decide/", {"accepted": True}, format="json"
    )
    assert response.json()["status"] == "accepted"

    response = client.post(
        f"{base}/stakeholders/", {"contact": contact.pk, "role": "signer"}, format="json"
    )
    assert response.status_code == 201
    stakeholder_id = response.json()["id"]
    assert client.delete(f"{base}/stakeholders/{stakeholder_id}/").status_code == 204
    assert client.get(f"{base}/stakeholders/").json()["results"] == []

    kinds = {e["kind"] for e in client.get(f"{base}/timeline/").json()["results"]}
    assert {"signal", "ask", "objection", "concession", "stakeholder", "transition"} <= kinds


def test_contracts_list_shows_status(rep, deal, api_client):
    """The deal's contract versions with their signature status."""
    ContractVersion.objects.create(deal=deal, number=1, status=ContractVersion.Status.SENT)
    rows = api_client(rep).get(f"{DEALS}{deal.pk}/contracts/").json()["results"]
    assert [(r["number"], r["status"], r["status_label"]) for r in rows] == [(1, "sent", "Sent")]


def test_timeline_is_paginated_newest_first(rep, deal, api_client):
    """The timeline pages by cursor, newest event first."""
    for n in range(5):
        services.deal_note_add(deal=deal, by=rep, text=f"Note {n}")
    client = api_client(rep)
    page = client.get(f"{DEALS}{deal.pk}/timeline/?page_size=4").json()
    assert [e["reason"] for e in page["results"]] == ["Note 4", "Note 3", "Note 2", "Note 1"]
    rest = client.get(page["next"]).json()
    assert [e["kind"] for e in rest["results"]] == ["note", "created"]


# --- the audit log is append-only ---------------------------------------------------------------


def test_the_api_has_no_way_to_change_or_delete_events(rep, manager, admin_user, deal, api_client):
    """No method on the timeline changes it, for anyone: the audit log is append-only."""
    services.deal_note_add(deal=deal, by=rep, text="Keep me")
    before = list(DealEvent.objects.filter(deal=deal).values_list("pk", "reason"))
    event_id = before[0][0]
    for user in (rep, manager, admin_user):
        client = api_client(user)
        url = f"{DEALS}{deal.pk}/timeline/"
        for method in ("post", "put", "patch", "delete"):
            assert getattr(client, method)(url, {}, format="json").status_code == 405
        for method in ("get", "put", "patch", "delete"):
            assert getattr(client, method)(f"{url}{event_id}/").status_code == 404
    assert list(DealEvent.objects.filter(deal=deal).values_list("pk", "reason")) == before


def test_the_schema_offers_only_reads_of_the_timeline(client):
    """Every API path about events is read-only: the audit log has no write route."""
    paths = client.get("/api/schema/?format=json").json()["paths"]
    event_paths = {p: set(ops) for p, ops in paths.items() if "timeline" in p or "event" in p}
    assert event_paths == {"/api/v1/deals/{deal_id}/timeline/": {"get"}}


# --- throttling -------------------------------------------------------------------------------


def test_api_throttle_answers_429(rep, settings, api_client):
    """Past the per-user rate the API answers 429 with a Retry-After header."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": "3/minute", "anon": "2/minute"},
    }
    client = api_client(rep)
    assert [client.get(DEALS).status_code for _ in range(3)] == [200, 200, 200]
    response = client.get(DEALS)
    assert response.status_code == 429
    assert "Retry-After" in response.headers
    anonymous = APIClient()
    statuses = [anonymous.get("/api/schema/").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


# --- schema and docs --------------------------------------------------------------------------


def test_schema_and_docs_are_served_locally(client):
    """The OpenAPI 3 schema and the docs page, with Swagger UI from the installed sidecar."""
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    body = schema.json()
    assert body["openapi"].startswith("3.")
    assert "/api/v1/deals/{deal_id}/transitions/{name}/" in body["paths"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and "<script>" not in html


# --- contracts ------------------------------------------------------------------------------


@pytest.fixture
def contract_template(db, settings, tmp_path):
    from contracts.models import ContractTemplate

    settings.MEDIA_ROOT = tmp_path / "media"
    return ContractTemplate.objects.create(
        name="API test MSA",
        body="<h1>Agreement {{ contract_number }}</h1><p>{{ account.name }}</p>",
        is_default=True,
    )


def test_generate_send_and_void_a_contract(rep, deal, contact, contract_template, api_client):
    """A script generates the contract, sends it (the deal moves) and can void it, through the
    contract services with their rules."""
    services.stakeholder_add(deal=deal, by=rep, contact=contact, role="signer")
    client = api_client(rep)
    base = f"{DEALS}{deal.pk}/contracts/"
    response = client.post(base, {}, format="json")
    assert response.status_code == 201, response.json()
    version = response.json()
    assert (version["number"], version["status"]) == (1, "draft")
    assert version["signer_email"] == "ann@acme.example" and len(version["sha256"]) == 64

    response = client.post(f"{base}{version['id']}/send/", {}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "sent"
    deal.refresh_from_db()
    assert deal.state == DealState.AGREEMENT_SENT
    response = client.post(f"{base}{version['id']}/send/", {}, format="json")
    assert response.status_code == 409 and "only a draft" in response.json()["detail"]

    response = client.post(f"{base}{version['id']}/void/", {}, format="json")
    assert response.status_code == 400 and "reason" in response.json()["fields"]
    response = client.post(f"{base}{version['id']}/void/", {"reason": "Wrong terms"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "voided"
    assert client.get(f"{base}{version['id']}/").json()["status_reason"] == "Wrong terms"


def test_a_teammate_cannot_send_the_owners_contract(
    rep, teammate, deal, contact, contract_template, api_client
):
    """Sending needs the same permission as on the deal page."""
    services.stakeholder_add(deal=deal, by=rep, contact=contact, role="signer")
    version = api_client(rep).post(f"{DEALS}{deal.pk}/contracts/", {}, format="json").json()
    response = api_client(teammate).post(
        f"{DEALS}{deal.pk}/contracts/{version['id']}/send/", {}, format="json"
    )
    assert response.status_code == 403
    deal.refresh_from_db()
    assert deal.state == DealState.INTENT_SPOTTED


# --- the rest of the deal page ----------------------------------------------------------------


def test_readiness_technique_and_notes(rep, deal, api_client):
    """Checklist, technique and notes go through their services and onto the timeline."""
    client = api_client(rep)
    base = f"{DEALS}{deal.pk}"
    response = client.post(
        f"{base}/readiness/",
        {"ready_needs_understood": True, "ready_budget_timing": True},
        format="json",
    )
    assert response.status_code == 200 and response.json()["readiness_score"] == 2
    assert client.post(f"{base}/readiness/", {}, format="json").status_code == 400
    response = client.post(f"{base}/technique/", {"technique": "summary"}, format="json")
    assert response.json()["closing_technique"] == "summary"
    response = client.post(f"{base}/technique/", {"technique": "shouting"}, format="json")
    assert response.status_code == 400
    response = client.post(f"{base}/notes/", {"text": "CFO back on Monday"}, format="json")
    assert response.status_code == 201 and response.json()["kind"] == "note"
    kinds = [e["kind"] for e in client.get(f"{base}/timeline/").json()["results"]]
    assert kinds[:3] == ["note", "technique", "readiness"]


def test_won_deal_onboarding_and_follow_on(rep, manager, deal, api_client):
    """After a (manager's override) win: the onboarding checklist and a follow-on deal."""
    _transition(api_client(manager), deal, "override_won", reason="Signed on paper")
    client = api_client(rep)
    base = f"{DEALS}{deal.pk}"
    steps = client.get(f"{base}/onboarding/").json()["results"]
    assert [s["kind"] for s in steps] == [
        "intro",
        "kickoff",
        "first_delivery",
        "value_verification",
    ]
    response = client.post(f"{base}/onboarding/{steps[0]['id']}/done/")
    assert response.status_code == 200 and response.json()["done_at"]
    response = client.post(
        f"{base}/follow-ons/", {"title": "EMEA rollout", "need": "Second region"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["parent_deal"] == deal.pk
    assert response.json()["state"] == "intent_spotted"


def test_follow_on_needs_a_won_deal(rep, deal, api_client):
    """A follow-on from an open deal is refused in plain words."""
    response = api_client(rep).post(
        f"{DEALS}{deal.pk}/follow-ons/", {"title": "x", "need": "y"}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["detail"] == "Follow-on deals start from a won deal."


def test_deal_detail_carries_the_same_next_best_action_as_the_page(rep, deal, api_client):
    """One function decides the next best action for the page and the API alike."""
    from deals.selectors.deal_page import deal_next_best_action

    response = api_client(rep).get(f"/api/v1/deals/{deal.pk}/")
    assert response.status_code == 200
    expected = deal_next_best_action(deal)
    assert response.json()["next_best_action"]["headline"] == expected.headline
    listing = api_client(rep).get("/api/v1/deals/").json()
    assert "next_best_action" not in listing["results"][0]  # not computed per row in lists
