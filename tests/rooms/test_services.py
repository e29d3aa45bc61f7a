"""The close plan and the room's services: audited, permission-checked, locked."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from deals import services as deal_services
from deals.models import BuyingSignal, DealEvent, DealState, Objection
from deals.services import DealConflict, DealError, NotPermitted
from notifications.models import Notification
from rooms import services
from rooms.models import PlanStep, RoomLink
from rooms.services import LinkRefused
from tests.concurrency import run_concurrently


def test_plan_from_the_shipped_template(deal, rep, plan_template):
    steps = services.plan_create_from_template(deal=deal, by=rep)
    titles = [s.title for s in steps if s.phase == "close"]
    assert titles[0].startswith("Discovery recap")
    assert any("Security review" in t for t in titles)
    assert any("Kickoff" in t for t in titles)
    assert {s.phase for s in steps} == {"close", "onboarding"}
    seller = [s for s in steps if s.side == "seller"]
    assert all(s.owner_user == rep for s in seller)
    event = DealEvent.objects.filter(deal=deal, kind="plan").first()
    assert "Standard B2B close" in event.reason and event.actor == rep
    with pytest.raises(DealConflict):
        services.plan_create_from_template(deal=deal, by=rep)


def test_another_rep_cannot_build_or_edit_the_plan(deal, other_rep, rep, plan_template):
    with pytest.raises(NotPermitted):
        services.plan_create_from_template(deal=deal, by=other_rep)
    step = services.plan_step_add(deal=deal, by=rep, title="Security review")
    with pytest.raises(NotPermitted):
        services.plan_step_update(step=step, by=other_rep, status="done")


def test_step_owner_rules(deal, rep, other_rep, group, make_user_contact):
    with pytest.raises(DealError, match="single line"):
        services.plan_step_add(deal=deal, by=rep, title="a\nb")
    with pytest.raises(DealError, match="team"):
        services.plan_step_add(deal=deal, by=rep, title="X", owner_user=other_rep)
    with pytest.raises(DealError, match="buying group"):
        services.plan_step_add(
            deal=deal, by=rep, title="X", side="buyer", owner_contact=make_user_contact
        )
    step = services.plan_step_add(
        deal=deal, by=rep, title="Legal", side="buyer", owner_contact=group
    )
    assert step.owner_contact == group and step.position == 1
    services.plan_step_update(step=step, by=rep, side="seller", owner_user=rep)
    step.refresh_from_db()
    assert (step.side, step.owner_user, step.owner_contact) == ("seller", rep, None)


def test_a_stale_rep_edit_is_a_conflict_after_the_buyer_ticked(deal, rep, group, room_link):
    step = services.plan_step_add(deal=deal, by=rep, title="Legal", side="buyer")
    services.room_step_tick(link=room_link, step=step)
    with pytest.raises(DealConflict, match="done"):
        services.plan_step_update(step=step, by=rep, expected_status="open", status="skipped")
    with pytest.raises(DealConflict):
        services.room_step_tick(link=room_link, step=step)


def test_buyer_can_tick_only_buyer_steps(deal, rep, room_link):
    step = services.plan_step_add(deal=deal, by=rep, title="Kickoff")
    with pytest.raises(DealError, match="buying group"):
        services.room_step_tick(link=room_link, step=step)


def test_visits_signals_and_notifications(deal, rep, room_link):
    assert services.room_visit_record(link=room_link) is True
    assert services.room_visit_record(link=room_link) is False  # same visit
    room_link.refresh_from_db()
    assert room_link.visits == 1 and room_link.first_visit_at
    assert BuyingSignal.objects.filter(deal=deal, kind="room_visit").count() == 1
    assert Notification.objects.filter(recipient=rep, kind="room_visited").count() == 1
    RoomLink.objects.filter(pk=room_link.pk).update(
        last_visit_at=timezone.now() - dt.timedelta(hours=2)
    )
    room_link.refresh_from_db()
    assert services.room_visit_record(link=room_link) is True
    room_link.refresh_from_db()
    assert room_link.visits == 2
    assert BuyingSignal.objects.filter(deal=deal, kind="room_visit").count() == 1
    assert (
        DealEvent.objects.filter(
            deal=deal, kind="room", reason__contains="opened the closing room"
        ).count()
        == 2
    )


def test_question_answer_and_objection(deal, rep, room_link):
    question = services.room_question_ask(link=room_link, text="Do you support SSO?")
    assert BuyingSignal.objects.filter(deal=deal, kind="room_question").exists()
    assert Notification.objects.filter(recipient=rep, kind="room_question").exists()
    services.room_question_answer(question=question, by=rep, answer="Yes, SAML and OIDC.")
    with pytest.raises(DealConflict):
        services.room_question_answer(question=question, by=rep, answer="again")
    objection = services.room_question_to_objection(question=question, by=rep, category="risk")
    assert objection.status == Objection.Status.OPEN and "SSO" in objection.detail
    with pytest.raises(DealConflict):
        services.room_question_to_objection(question=question, by=rep)
    with pytest.raises(DealError):
        services.room_question_ask(link=room_link, text="   ")


def test_revoked_and_expired_links_are_refused(deal, rep, room_link):
    token = services.room_token(room_link)
    assert services.room_link_for_token(token).pk == room_link.pk
    with pytest.raises(LinkRefused, match="not valid"):
        services.room_link_for_token(token[:-2] + "xx")
    RoomLink.objects.filter(pk=room_link.pk).update(expires_at=timezone.now())
    with pytest.raises(LinkRefused, match="expired"):
        services.room_link_for_token(token)
    RoomLink.objects.filter(pk=room_link.pk).update(
        expires_at=timezone.now() + dt.timedelta(days=1)
    )
    services.room_link_revoke(link=room_link, by=rep)
    with pytest.raises(LinkRefused, match="turned off"):
        services.room_link_for_token(token)
    with pytest.raises(DealConflict):
        services.room_link_revoke(link=room_link, by=rep)


def test_links_only_for_the_buying_group(deal, rep, contact):
    with pytest.raises(DealError, match="buying group"):
        services.room_link_issue(deal=deal, by=rep, contact=contact)


def test_uploads_are_limited(deal, rep, room_link, settings):
    settings.ROOM_UPLOAD_MAX_BYTES = 100
    with pytest.raises(DealError, match="too large"):
        services.room_file_upload(link=room_link, upload=SimpleUploadedFile("a.pdf", b"x" * 101))
    with pytest.raises(DealError, match="not accepted"):
        services.room_file_upload(link=room_link, upload=SimpleUploadedFile("a.html", b"<script>"))
    f = services.room_file_upload(
        link=room_link, upload=SimpleUploadedFile('r"e/p.pdf', b"%PDF-1", content_type="text/html")
    )
    assert f.content_type == "application/pdf" and f.from_buyer
    assert '"' not in f.name and "/" not in f.name


def test_outcomes_after_the_win_and_needs_become_follow_on_deals(deal, rep, room_link, manager):
    outcome = services.plan_outcome_add(deal=deal, by=rep, text="Month-end close in 3 days")
    need = services.deal_need_add(deal=deal, by=rep, text="Reporting for the Paris office")
    with pytest.raises(DealError, match="after the contract is signed"):
        services.room_outcome_confirm(link=room_link, outcome=outcome, status="met")
    deal_services.deal_transition(
        deal=deal, transition="override_won", by=manager, reason="Signed on paper"
    )
    deal.refresh_from_db()
    assert deal.state == DealState.CLOSED_WON
    services.room_outcome_confirm(link=room_link, outcome=outcome, status="partly", note="4 days")
    outcome.refresh_from_db()
    assert outcome.status == "partly" and outcome.confirmed_by == room_link.contact
    follow_on = services.deal_need_to_follow_on(need=need, by=rep, amount=Decimal("500"))
    assert follow_on.parent_deal == deal and follow_on.title == need.text
    with pytest.raises(DealConflict):
        services.deal_need_to_follow_on(need=need, by=rep)


def test_onboarding_steps_get_dates_on_the_win(deal, rep, manager, plan_template):
    services.plan_create_from_template(deal=deal, by=rep)
    onboarding = PlanStep.objects.filter(deal=deal, phase="onboarding")
    assert not onboarding.filter(due_date__isnull=False).exists()
    deal_services.deal_transition(deal=deal, transition="override_won", by=manager, reason="Paper")
    assert not onboarding.filter(due_date__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_twenty_buyers_ticking_one_step_at_once_tick_it_once(postgres, deal, rep, room_link):
    step = services.plan_step_add(deal=deal, by=rep, title="Security review", side="buyer")
    outcomes = run_concurrently(
        lambda s: services.room_step_tick(link=room_link, step=s),
        load=lambda: PlanStep.objects.get(pk=step.pk),
    )
    assert sum(o.won for o in outcomes) == 1
    assert all(isinstance(o.error, DealConflict) for o in outcomes if not o.won)
    assert DealEvent.objects.filter(deal=deal, kind="room", data__step_id=step.pk).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_revokes_and_answers_decide_once(postgres, deal, rep, room_link):
    outcomes = run_concurrently(
        lambda link: services.room_link_revoke(link=link, by=rep),
        load=lambda: RoomLink.objects.get(pk=room_link.pk),
        threads=10,
    )
    assert sum(o.won for o in outcomes) == 1
    question = services.room_question_ask(link=room_link, text="Price for 50 seats?")
    from rooms.models import RoomQuestion

    outcomes = run_concurrently(
        lambda q: services.room_question_answer(question=q, by=rep, answer="42"),
        load=lambda: RoomQuestion.objects.get(pk=question.pk),
        threads=10,
    )
    assert sum(o.won for o in outcomes) == 1
    assert (
        DealEvent.objects.filter(deal=deal, data__question_id=question.pk, actor=rep).count() == 1
    )


def test_manager_figures(deal, rep, manager, room_link, plan_template, make_deal):
    from rooms import selectors

    services.plan_create_from_template(deal=deal, by=rep)
    PlanStep.objects.filter(deal=deal, phase="close").update(
        due_date=timezone.localdate() - dt.timedelta(days=2)
    )
    services.room_visit_record(link=room_link)
    from pipeline.selectors import dashboard_deals, dashboard_filters

    slipping = selectors.plan_slippage(dashboard_deals(dashboard_filters(manager, {})))
    assert slipping[0]["deal_id"] == deal.pk and slipping[0]["slipped"] == 6
    # The owner reads as everywhere else on the coaching page: the name, not the login.
    assert slipping[0]["owner"] == str(rep)
    assert [s.deal_id for s in selectors.slipped_steps_for(rep)] == [deal.pk] * 6
    deal_services.deal_transition(deal=deal, transition="override_won", by=manager, reason="Paper")
    # Won: the close steps no longer slip; the onboarding steps are dated from the win.
    assert selectors.slipped_steps_for(rep) == []
    lost = make_deal(title="No plan")
    deal_services.deal_transition(
        deal=lost, transition="mark_lost", by=rep, reason="Budget", loss_reason="price"
    )
    filters = dashboard_filters(manager, {})
    deals = dashboard_deals(filters)
    assert selectors.plan_slippage(deals) == []
    engagement = selectors.buyer_engagement(deals)
    assert engagement == [
        {
            "deal_id": deal.pk,
            "title": deal.title,
            "visits": 1,
            "people": 1,
            "last_visit": RoomLink.objects.get().last_visit_at,
        }
    ]
    rates = selectors.plan_win_rates(deals, start=filters.start_at, end=filters.end_at)
    assert rates["with_plan"] == {"won": 1, "closed": 1, "rate": 100}
    assert rates["without_plan"] == {"won": 0, "closed": 1, "rate": 0}


def test_personal_data_export_and_erasure_cover_the_room(deal, rep, room_link, admin_user):
    question = services.room_question_ask(link=room_link, text="Ann here: call me on 0170 123")
    upload = services.room_file_upload(
        link=room_link, upload=SimpleUploadedFile("cv.pdf", b"%PDF-ann")
    )
    stored = upload.file.name
    contact = room_link.contact
    exported = deal_services.contact_personal_data_export(contact=contact, by=admin_user)
    assert exported["room_questions"][0]["text"] == question.text
    assert exported["room_uploads"][0]["name"] == "cv.pdf"
    deal_services.contact_erase(contact=contact, by=admin_user, reason="Art. 17 request")
    question.refresh_from_db()
    room_link.refresh_from_db()
    upload.refresh_from_db()
    assert "0170" not in question.text
    assert room_link.revoked_at is not None
    assert upload.name != "cv.pdf" and not upload.file
    from django.core.files.storage import default_storage

    assert not default_storage.exists(stored)
