"""Who gets into a room, and what it shows: one deal to one person, nothing more."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from deals import services as deal_services
from deals.models import Stakeholder
from rooms import services
from rooms.models import PlanStep, RoomFile, RoomLink


def room(token, name="room", *args):
    return reverse(f"rooms_public:{name}", args=[token, *args])


@pytest.fixture
def other_deal_room(other_rep):
    """Another team's deal with its own room, plan step and file."""
    account = deal_services.account_create(by=other_rep, team=other_rep.team, name="Globex")
    contact = deal_services.contact_create(
        by=other_rep,
        account=account,
        first_name="Gil",
        last_name="Globex",
        email="gil@globex.example",
    )
    deal = deal_services.deal_create(
        by=other_rep, account=account, title="Globex secret deal", amount=Decimal("987654")
    )
    deal_services.stakeholder_add(
        deal=deal, by=other_rep, contact=contact, role=Stakeholder.Role.SIGNER
    )
    link = services.room_link_issue(deal=deal, by=other_rep, contact=contact)
    step = services.plan_step_add(deal=deal, by=other_rep, title="Globex step", side="buyer")
    shared = services.room_file_share(
        deal=deal, by=other_rep, upload=SimpleUploadedFile("globex.pdf", b"%PDF-globex")
    )
    return {"deal": deal, "link": link, "step": step, "file": shared}


def test_the_room_shows_this_deal_only_and_no_internal_data(
    client, deal, rep, room_token, other_deal_room
):
    deal_services.deal_note_add(deal=deal, by=rep, text="INTERNAL: they will pay more")
    services.plan_step_add(
        deal=deal, by=rep, title="Security review", side="buyer", note="internal note XYZ"
    )
    response = client.get(room(room_token))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Acme rollout" in html and "Security review" in html
    assert "INTERNAL" not in html and "internal note XYZ" not in html
    assert "Globex" not in html and "987" not in html
    assert "rita@example.com" not in html  # users' data
    assert 'id="main"' in html and "<script>" not in html.split("</head>")[1]


def test_tampered_link_is_refused(client, room_token):
    response = client.get(room(room_token[:-3] + "abc"))
    assert response.status_code == 403
    assert "not valid" in response.content.decode()


def test_expired_link_is_refused(client, room_link, room_token):
    RoomLink.objects.filter(pk=room_link.pk).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    response = client.get(room(room_token))
    assert response.status_code == 403
    assert "expired" in response.content.decode()


def test_revoking_ends_the_link_at_once(client, rep, room_link, room_token):
    assert client.get(room(room_token)).status_code == 200
    services.room_link_revoke(link=room_link, by=rep)
    for url, method in [
        (room(room_token), "get"),
        (room(room_token, "question_ask"), "post"),
        (room(room_token, "contract"), "get"),
    ]:
        response = getattr(client, method)(url, {"text": "hi"} if method == "post" else None)
        assert response.status_code == 403, url
        assert "turned off" in response.content.decode()


def test_another_deals_ids_in_a_room_url_are_404(client, room_token, other_deal_room):
    step, shared = other_deal_room["step"], other_deal_room["file"]
    assert client.post(room(room_token, "step_tick", step.pk)).status_code == 404
    assert client.get(room(room_token, "file_open", shared.pk)).status_code == 404
    step.refresh_from_db()
    assert step.status == PlanStep.Status.OPEN


def test_a_buyer_cannot_open_another_buyers_upload(
    client, deal, rep, room_link, room_token, make_user_contact
):
    deal_services.stakeholder_add(deal=deal, by=rep, contact=make_user_contact, role="user")
    other = services.room_link_issue(deal=deal, by=rep, contact=make_user_contact)
    theirs = services.room_file_upload(link=other, upload=SimpleUploadedFile("t.pdf", b"%PDF"))
    assert client.get(room(room_token, "file_open", theirs.pk)).status_code == 404


def test_uploads_over_the_limit_or_of_the_wrong_type_are_refused(
    client, deal, room_token, settings
):
    settings.ROOM_UPLOAD_MAX_BYTES = 1024
    big = SimpleUploadedFile("big.pdf", b"x" * 1025, content_type="application/pdf")
    response = client.post(room(room_token, "file_upload"), {"file": big})
    assert response.status_code == 400
    assert "too large" in response.content.decode()
    html = SimpleUploadedFile("x.html", b"<script>alert(1)</script>", content_type="text/html")
    response = client.post(room(room_token, "file_upload"), {"file": html})
    assert response.status_code == 400
    assert "not accepted" in response.content.decode()
    assert not RoomFile.objects.filter(deal=deal).exists()


def test_buyer_files_are_served_as_attachments(client, deal, rep, room_token):
    ok = SimpleUploadedFile(
        "notes.txt", b"<html><script>alert(1)</script>", content_type="text/html"
    )
    assert client.post(room(room_token, "file_upload"), {"file": ok}).status_code == 302
    uploaded = RoomFile.objects.get(deal=deal)
    response = client.get(room(room_token, "file_open", uploaded.pk))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    assert response["Content-Type"] == "text/plain"
    assert response["X-Content-Type-Options"] == "nosniff"
    client.force_login(rep)
    response = client.get(reverse("rooms:file_download", args=[deal.pk, uploaded.pk]))
    assert response["Content-Disposition"].startswith("attachment")


def test_the_room_link_is_throttled(client, room_token, settings):
    settings.ROOM_LINK_THROTTLE = 3
    for _ in range(3):
        assert client.get(room(room_token)).status_code == 200
    assert client.get(room(room_token)).status_code == 429


def test_rep_pages_of_another_teams_deal_are_404(client, other_rep, deal, room_link):
    client.force_login(other_rep)
    assert client.get(reverse("rooms:panel", args=[deal.pk])).status_code == 404
    response = client.post(reverse("rooms:link_revoke", args=[deal.pk, room_link.pk]))
    assert response.status_code == 404
    room_link.refresh_from_db()
    assert room_link.revoked_at is None


def test_buyer_ticks_asks_and_the_rep_answers_through_pages(
    client, deal, rep, room_token, plan_template
):
    services.plan_create_from_template(deal=deal, by=rep)
    buyer_step = PlanStep.objects.filter(deal=deal, side="buyer", phase="close").first()
    response = client.post(room(room_token, "step_tick", buyer_step.pk))
    assert response.status_code == 302
    buyer_step.refresh_from_db()
    assert buyer_step.status == "done"
    assert (
        client.post(room(room_token, "question_ask"), {"text": "When can we start?"}).status_code
        == 302
    )
    rep_client = client.__class__()
    rep_client.force_login(rep)
    panel = rep_client.get(reverse("rooms:panel", args=[deal.pk]), HTTP_HX_REQUEST="true")
    assert "When can we start?" in panel.content.decode()
    question = deal.room_questions.get()
    response = rep_client.post(
        reverse("rooms:question_answer", args=[deal.pk, question.pk]),
        {"answer": "On the 1st."},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200 and "On the 1st." in response.content.decode()
    assert "On the 1st." in client.get(room(room_token)).content.decode()
