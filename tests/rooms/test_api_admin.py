"""The REST API and the admin for plans, steps and room links go through the services."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from deals.models import DealEvent
from rooms import services
from rooms.models import PlanStep, PlanTemplate, RoomLink


@pytest.fixture
def api(rep):
    client = APIClient()
    client.force_authenticate(rep)
    return client


def test_plan_api(api, deal, rep, group, plan_template):
    base = f"/api/v1/deals/{deal.pk}/plan/"
    response = api.post(base + "from-template/", format="json")
    assert response.status_code == 201, response.json()
    assert len(response.json()) == plan_template.steps.count()
    assert api.post(base + "from-template/", format="json").status_code == 409
    listed = api.get(base).json()
    assert listed["results"][0]["title"].startswith("Discovery recap")
    response = api.post(
        base,
        {"title": "Data protection addendum", "side": "buyer", "owner_contact": group.pk},
        format="json",
    )
    assert response.status_code == 201, response.json()
    step_id = response.json()["id"]
    response = api.patch(
        f"{base}{step_id}/", {"status": "done", "expected_status": "open"}, format="json"
    )
    assert response.status_code == 200 and response.json()["status"] == "done"
    response = api.patch(
        f"{base}{step_id}/", {"status": "skipped", "expected_status": "open"}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    response = api.post(base, {"title": "a\nb"}, format="json")
    assert response.status_code == 400 and "title" in response.json()["fields"]
    assert DealEvent.objects.filter(deal=deal, kind="plan").count() >= 3


def test_room_link_api(api, deal, rep, group, make_user_contact):
    base = f"/api/v1/deals/{deal.pk}/room-links/"
    response = api.post(base, {"contact": group.pk, "days": 10}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert "/room/" in body["url"]
    assert api.post(base, {"contact": make_user_contact.pk}, format="json").status_code == 409
    response = api.post(f"{base}{body['id']}/revoke/", format="json")
    assert (
        response.status_code == 200 and response.json()["revoked_at"] and not response.json()["url"]
    )
    assert api.post(f"{base}{body['id']}/revoke/", format="json").status_code == 409


def test_another_teams_deal_is_404_in_the_api(deal, other_rep, group, room_link):
    client = APIClient()
    client.force_authenticate(other_rep)
    assert client.get(f"/api/v1/deals/{deal.pk}/plan/").status_code == 404
    assert client.get(f"/api/v1/deals/{deal.pk}/room-links/").status_code == 404
    response = client.post(f"/api/v1/deals/{deal.pk}/room-links/{room_link.pk}/revoke/")
    assert response.status_code == 404


def test_admin_edits_templates_and_acts_on_links_through_services(
    client, admin_user, deal, rep, room_link
):
    client.force_login(admin_user)
    assert client.get(reverse("admin:rooms_plantemplate_add")).status_code == 200
    assert client.get(reverse("admin:rooms_roomlink_changelist")).status_code == 200
    # Links, steps and questions are read-only: no add, no change, no delete.
    assert client.get(reverse("admin:rooms_roomlink_add")).status_code == 403
    response = client.post(
        reverse("admin:rooms_roomlink_changelist"),
        {"action": "revoke", "_selected_action": [room_link.pk]},
        follow=True,
    )
    assert response.status_code == 200
    room_link.refresh_from_db()
    assert room_link.revoked_at is not None and room_link.revoked_by == admin_user
    assert DealEvent.objects.filter(deal=deal, kind="room", actor=admin_user).exists()
    step = services.plan_step_add(deal=deal, by=rep, title="Legal review")
    client.post(
        reverse("admin:rooms_planstep_changelist"),
        {"action": "mark_done", "_selected_action": [step.pk]},
    )
    step.refresh_from_db()
    assert step.status == PlanStep.Status.DONE and step.done_by_user == admin_user
    assert PlanTemplate.objects.exists()
    assert RoomLink.objects.count() == 1
