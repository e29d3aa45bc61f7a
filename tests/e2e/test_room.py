"""The buyer's closing room in real headless Chromium, with two browser contexts.

The rep builds the close plan from the template and shares the room; the buyer (no login)
opens it, ticks a step, asks a question, reads and signs the contract; the rep sees the
events and answers; the signature wins the deal; the buyer's room then shows onboarding.
"""

from __future__ import annotations

import datetime as dt
import importlib
import re
from urllib.parse import urljoin

import pytest
from django.utils import timezone

from closing_crm.celery import app as celery_app
from contracts import services as contract_services
from contracts.models import ContractTemplate
from deals import services as deal_services
from deals.models import DealEvent, DealState, LineItem, Stakeholder
from deals.templatetags.crm_format import day_text
from rooms import services as rooms_services
from rooms.models import PlanStep, PlanTemplate, RoomQuestion


@pytest.fixture
def room_deal(rep, deal, contact, settings, tmp_path, live_server):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SITE_URL = live_server.url
    if not ContractTemplate.objects.filter(is_default=True).exists():
        shipped = importlib.import_module("contracts.migrations.0002_initial")
        ContractTemplate.objects.create(
            name=shipped.DEFAULT_NAME, body=shipped.DEFAULT_BODY, is_default=True
        )
    if not PlanTemplate.objects.filter(is_default=True).exists():
        from django.apps import apps

        importlib.import_module("rooms.migrations.0002_default_plan_template").add_default(
            apps, None
        )
    deal_services.stakeholder_add(deal=deal, by=rep, contact=contact, role=Stakeholder.Role.SIGNER)
    LineItem.objects.create(deal=deal, description="Platform licence", quantity=12, unit_price=1000)
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield deal
    celery_app.conf.task_always_eager = previous


@pytest.mark.django_db(transaction=True)
def test_rep_and_buyer_close_the_deal_in_the_room(browser, page, login, snap, room_deal, rep):
    deal = room_deal
    # --- the rep builds the plan and shares the room ---
    login(page, "rita")
    page.goto(deal.get_absolute_url())
    panel = page.locator("#room-panel")
    panel.get_by_role("button", name=re.compile("Build the plan from")).click()
    panel.get_by_text("Security review").wait_for()
    assert panel.get_by_test_id("plan-step").count() == 9
    panel.get_by_role("button", name="Share the room").click()
    link_box = page.locator("#room-panel").get_by_test_id("room-link")
    link_box.wait_for()
    room_url = link_box.input_value()
    assert "/room/" in room_url
    snap(page, "room-deal-panel")
    # The rep sends the contract (the contract panel's own journey is tested elsewhere).
    version = contract_services.contract_generate(deal=deal, by=rep)
    contract_services.contract_send(version=version, by=rep, notify=False)

    # --- the buyer, without an account, in a context of their own ---
    buyer = browser.new_context(viewport={"width": 1100, "height": 900})
    buyer.set_default_timeout(10_000)
    room = buyer.new_page()
    room.goto(room_url)
    assert "Welcome, Ann Buyer" in room.content()
    room.get_by_role("button", name="Mark “Security review” done").click()
    room.wait_for_load_state()
    step = PlanStep.objects.get(deal=deal, title="Security review")
    assert step.status == "done"
    room.get_by_label("Your question").fill("Can we pay quarterly?")
    room.get_by_role("button", name="Ask").click()
    room.get_by_text("Can we pay quarterly?").wait_for()
    snap(room, "room-buyer")
    read_href = room.get_by_role("link", name="Read the contract").get_attribute("href")
    contract = room.request.get(urljoin(room.url, read_href))
    assert contract.status == 200 and "Platform licence" in contract.text()
    room.get_by_test_id("room-sign").click()
    room.wait_for_url(re.compile(r"/sign/"))
    room.get_by_label("Type your full name").fill("Ann Buyer")
    room.get_by_label(re.compile("agree to sign it electronically")).check()
    room.get_by_role("button", name="Sign the contract").click()
    room.get_by_test_id("signed").wait_for()

    # --- the rep sees what the buyer did, and answers ---
    page.goto(deal.get_absolute_url())
    timeline = page.locator("body").inner_text()
    assert "Ann Buyer opened the closing room" in timeline
    assert "Ann Buyer ticked “Security review”" in timeline
    panel = page.locator("#room-panel")
    panel.get_by_text("Can we pay quarterly?").wait_for()
    panel.get_by_label(re.compile("Your answer")).fill("Yes, quarterly in advance.")
    panel.get_by_role("button", name="Answer").click()
    panel.get_by_text("Yes, quarterly in advance.").wait_for()
    assert RoomQuestion.objects.get(deal=deal).answered_by == rep
    deal.refresh_from_db()
    assert deal.state == DealState.CLOSED_WON
    assert DealEvent.objects.filter(deal=deal, kind="room").count() >= 4

    # --- after the win the buyer's room shows onboarding and the signed copy ---
    room.goto(room_url)
    room.get_by_test_id("room-onboarding").wait_for()
    text = room.content()
    assert "Onboarding: first delivery" in text
    assert "Yes, quarterly in advance." in text
    signed_href = room.get_by_role("link", name="Download the signed contract").get_attribute(
        "href"
    )
    signed = room.request.get(urljoin(room.url, signed_href))
    assert signed.status == 200 and signed.body().startswith(b"%PDF")
    assert signed.headers["content-disposition"].startswith("attachment")
    snap(room, "room-buyer-won")
    buyer.close()


@pytest.mark.django_db(transaction=True)
def test_rep_edits_a_step_date_and_the_buyer_room_shows_it(
    browser, page, login, snap, room_deal, rep, contact
):
    """The rep edits a step inline on the deal page; the buyer's room shows the new date."""
    deal = room_deal
    rooms_services.plan_create_from_template(deal=deal, by=rep)
    link = rooms_services.room_link_issue(deal=deal, by=rep, contact=contact)
    new_date = timezone.localdate() + dt.timedelta(days=45)
    login(page, "rita")
    page.goto(deal.get_absolute_url())
    panel = page.locator("#room-panel")
    panel.get_by_role("link", name="Edit “Security review”").click()
    form = panel.get_by_test_id("plan-step-edit")
    form.get_by_label("Due date").fill(new_date.isoformat())
    form.get_by_label(re.compile("^Note")).fill("SOC 2 report goes first")
    snap(page, "room-step-edit")
    form.get_by_role("button", name="Save").click()
    panel.get_by_test_id("room-notice").wait_for()
    row = panel.get_by_test_id("plan-step").filter(has_text="Security review")
    assert f"due {day_text(new_date)}" in row.inner_text()
    assert "SOC 2 report goes first" in row.inner_text()
    step = PlanStep.objects.get(deal=deal, title="Security review")
    assert step.due_date == new_date
    # Cancel puts the row back unchanged.
    panel.get_by_role("link", name="Edit “Security review”").click()
    panel.get_by_test_id("plan-step-edit").get_by_role("link", name="Cancel").click()
    panel.get_by_role("link", name="Edit “Security review”").wait_for()

    buyer = browser.new_context(viewport={"width": 390, "height": 844})
    buyer.set_default_timeout(10_000)
    room = buyer.new_page()
    room.goto(rooms_services.room_url(link))
    item = room.locator("li.rm-step", has_text="Security review").first
    assert f"due {day_text(new_date)}" in item.inner_text()
    assert "SOC 2" not in room.content()  # the note is for the rep's team only
    buyer.close()
