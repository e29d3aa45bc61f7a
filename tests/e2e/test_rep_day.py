"""A rep's day without friction (issue 15): the first eight stumbles, in real Chromium.

Each test walks the page as a rep would and saves screenshots to test-artifacts/screenshots/.
"""

from __future__ import annotations

import datetime as dt
import importlib
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone
from playwright.sync_api import expect

from closing_crm.celery import app as celery_app
from contracts.models import ContractTemplate
from deals import services
from deals.models import Deal, DealState, Stakeholder
from tests.conftest import make_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world(db, settings, tmp_path, live_server):
    """A team with a rep and a manager, an account with three contacts and an open deal."""
    from deals.models import Team, User

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SITE_URL = live_server.url
    if not ContractTemplate.objects.filter(is_default=True).exists():
        shipped = importlib.import_module("contracts.migrations.0002_initial")
        ContractTemplate.objects.create(
            name=shipped.DEFAULT_NAME, body=shipped.DEFAULT_BODY, is_default=True
        )
    from django.apps import apps

    # Transactional tests flush the data migrations' rows: put the default cadence back.
    importlib.import_module("followups.migrations.0002_default_cadence").create_default(apps, None)
    importlib.import_module("deals.migrations.0002_stage_settings").create(apps, None)
    team = Team.objects.create(name="Team North", currency="EUR")
    rep = make_user("rita", team, time_zone="Europe/Berlin")
    manager = make_user("mona", team, User.Role.MANAGER)
    account = services.account_create(by=rep, team=team, name="Acme GmbH")
    people = {
        first: services.contact_create(
            by=rep,
            account=account,
            first_name=first,
            last_name=last,
            job_title=title,
            email=f"{first.lower()}@acme.example",
        )
        for first, last, title in [
            ("Ann", "Buyer", "COO"),
            ("Marcus", "Lindqvist", "CFO"),
            ("Jonas", "Weber", "Procurement lead"),
        ]
    }
    deal = services.deal_create(
        by=rep,
        account=account,
        title="Acme rollout",
        amount=Decimal("120000"),
        expected_close_date=timezone.localdate() + dt.timedelta(days=30),
        next_step="Demo for the COO",
        next_step_due=timezone.localdate() + dt.timedelta(days=2),
    )
    services.stakeholder_add(deal=deal, by=rep, contact=people["Ann"], role="decision_maker")
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield {"rep": rep, "manager": manager, "account": account, "people": people, "deal": deal}
    celery_app.conf.task_always_eager = previous


def in_viewport(page, locator) -> bool:
    """The element is on screen and not under the sticky top bar."""
    box = locator.bounding_box()
    bar = page.locator(".topbar").bounding_box()
    height = page.viewport_size["height"]
    # A bar that scrolled away with the page (phones) hides nothing.
    below_bar = bar["y"] + bar["height"] if bar["y"] >= 0 else 0
    return box is not None and box["y"] >= below_bar - 1 and box["y"] + box["height"] <= height


# 1 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "production"])
def test_validation_errors_render_in_place_with_debug_on_and_off(
    page, login, snap, world, settings, debug
):
    """An empty buying signal and "Close as lost" without a reason answer in place; the page
    around them stays (DEBUG used to swap the whole page for an unstyled fragment)."""
    settings.DEBUG = debug
    deal = world["deal"]
    login(page, "rita")
    page.goto(deal.get_absolute_url())
    assert page.locator("script[src*='django-htmx']").count() == 0
    signals = page.locator("#panel-signals")
    signals.get_by_role("button", name="Log signal").click()
    expect(signals.locator(".errorlist")).to_contain_text("Write down what the buyer said")
    expect(page.get_by_test_id("deal-state")).to_have_text("Intent spotted")
    expect(page.locator("#deal-timeline")).to_be_visible()

    page.locator("[data-move='mark_lost']").click()
    dialog = page.locator("#modal")
    dialog.get_by_role("button", name="Close as lost").click()
    expect(dialog).to_contain_text("Choose a loss reason before closing the deal as lost.")
    expect(page.locator("#deal-header")).to_be_visible()
    snap(page, f"rep-day-01-errors-in-place-{'debug' if debug else 'production'}")
    deal.refresh_from_db()
    assert deal.state == DealState.INTENT_SPOTTED


# 2 -------------------------------------------------------------------------------------


def test_housekeeping_does_not_make_a_deal_look_active(page, login, snap, world):
    """A contract sent 40 days ago whose past follow-ups the system skipped today still shows
    as stalled, with its real last activity."""
    from contracts import services as contract_services
    from followups.services import reminders_settle_past

    deal, rep = world["deal"], world["rep"]
    services.stakeholder_add(deal=deal, by=rep, contact=world["people"]["Marcus"], role="signer")
    with time_machine.travel(timezone.now() - dt.timedelta(days=40), tick=False):
        version = contract_services.contract_generate(deal=deal, by=rep)
        contract_services.contract_send(version=version, by=rep, notify=False)
    assert reminders_settle_past(before=timezone.now(), reason="planned in the past") > 0
    deal.refresh_from_db()
    assert (timezone.now() - deal.last_activity_at).days >= 40
    login(page, "rita")
    page.goto("/")
    stalled = page.locator("#stalled")
    expect(stalled).to_contain_text("Acme rollout")
    expect(stalled).to_contain_text("No activity for 40 days")
    snap(page, "rep-day-02-stalled-after-housekeeping")


# 3 -------------------------------------------------------------------------------------


def test_the_rep_chooses_who_signs(page, login, snap, world):
    """With only a decision maker in the buying group, the contract panel asks who signs and
    says why; the chosen contact becomes the signer the contract is addressed to."""
    deal = world["deal"]
    login(page, "rita")
    page.goto(deal.get_absolute_url())
    panel = page.locator("#contracts-panel")
    expect(panel).to_contain_text("Who signs the contract?")
    expect(panel).to_contain_text("often not the decision maker")
    panel.get_by_label("Who signs the contract?").select_option(
        label="Jonas Weber · Procurement lead (jonas@acme.example)"
    )
    snap(page, "rep-day-03-choose-signer")
    panel.get_by_role("button", name="Generate contract").click()
    page.wait_for_load_state()
    expect(page.get_by_test_id("contract-message")).to_contain_text("generated for Jonas Weber")
    expect(page.locator("#panel-stakeholders")).to_contain_text("Jonas Weber")
    version = deal.contract_versions.get()
    assert version.signer_email == "jonas@acme.example"
    assert deal.stakeholders.filter(role=Stakeholder.Role.SIGNER).count() == 1


# 4 -------------------------------------------------------------------------------------


def test_past_dates_are_refused_for_new_deals_and_shown_with_their_year(page, login, snap, world):
    """A new deal closing in 2019 is refused in plain words; an existing deal's past dates are
    kept but flagged, with the year shown."""
    login(page, "rita")
    page.goto("/deals/new/")
    page.get_by_label("Deal name").fill("Typo deal")
    page.locator("#id_account").select_option(label="Acme GmbH")
    page.get_by_label("Amount").fill("5000")
    page.get_by_label("Expected close").fill("2019-03-03")
    page.get_by_role("button", name="Create deal").click()
    expect(page.locator("body")).to_contain_text("3 Mar 2019 is in the past")
    snap(page, "rep-day-04-new-deal-past-date")
    assert not Deal.objects.filter(title="Typo deal").exists()

    deal = world["deal"]
    page.goto(deal.get_absolute_url())
    panel = page.locator("#panel-next-step")
    panel.get_by_label("Due").fill("2020-01-15")
    panel.get_by_label("Expected close").fill("2020-02-01")
    panel.get_by_role("button", name="Save").click()
    expect(page.locator("#panel-next-step")).to_contain_text("overdue since 15 Jan 2020")
    expect(page.get_by_test_id("close-date-past")).to_contain_text("1 Feb 2020")
    next_year = timezone.localdate().replace(month=1, day=5) + dt.timedelta(days=366)
    deal.refresh_from_db()
    services.deal_update(deal=deal, by=world["rep"], expected_close_date=next_year)
    page.reload()
    expect(page.locator("#deal-header")).to_contain_text(f"{next_year.day} Jan {next_year.year}")
    snap(page, "rep-day-04-dates-with-years")


# 5 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("viewport", [(1440, 900), (390, 844)], ids=["desktop", "phone"])
def test_generate_and_send_confirmations_are_on_screen(page, login, snap, world, viewport):
    """After Generate and after Send the confirmation is where the page lands, below the
    sticky bar."""
    deal, rep = world["deal"], world["rep"]
    services.stakeholder_add(deal=deal, by=rep, contact=world["people"]["Marcus"], role="signer")
    page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    login(page, "rita")
    page.goto(deal.get_absolute_url())
    page.locator("#contracts-panel").get_by_role("button", name="Generate contract").click()
    page.wait_for_load_state()
    message = page.get_by_test_id("contract-message")
    expect(message).to_contain_text("Contract version 1 generated")
    assert in_viewport(page, message)
    assert in_viewport(page, page.locator("#contracts-h"))
    page.locator("#contracts-panel").get_by_role("button", name="Send for signature").click()
    page.wait_for_load_state()
    message = page.get_by_test_id("contract-message")
    expect(message).to_contain_text("on its way to Marcus Lindqvist")
    assert in_viewport(page, message)
    snap(page, f"rep-day-05-sent-{viewport[0]}")


# 6 -------------------------------------------------------------------------------------


def test_panels_stay_in_sync_without_a_reload(page, login, snap, world):
    """A new closing technique shows in the ask form at once; resolving the only objection
    ticks "Objections resolved"; adding the signer ticks "Decision maker and signer known"."""
    deal = world["deal"]
    services.objection_raise(
        deal=deal, by=world["rep"], category="price", detail="Budget is 15% below the quote."
    )
    login(page, "rita")
    page.goto(deal.get_absolute_url())
    readiness = page.locator("#panel-readiness")
    expect(readiness.get_by_label("Objections resolved")).not_to_be_checked()
    expect(readiness.get_by_label("Decision maker and signer known")).to_be_disabled()

    technique = page.locator("#panel-technique")
    technique.get_by_label("Closing technique").select_option("summary")
    technique.get_by_role("button", name="Choose").click()
    expect(page.locator("#ask-technique select")).to_have_value("summary")

    objections = page.locator("#panel-objections")
    objections.get_by_label("How was it settled?").fill("Quarterly billing, same total.")
    objections.get_by_role("button", name="Settle").click()
    expect(page.locator("#panel-readiness").get_by_label("Objections resolved")).to_be_checked()

    group = page.locator("#panel-stakeholders")
    group.locator("summary", has_text="Add someone").click()
    group.get_by_label("Contact", exact=True).select_option(label="Marcus Lindqvist · CFO")
    group.get_by_label("Role").select_option("signer")
    group.get_by_role("button", name="Add to buying group").click()
    expect(
        page.locator("#panel-readiness").get_by_label("Decision maker and signer known")
    ).to_be_checked()
    expect(page.get_by_test_id("readiness-score")).to_have_text("2/6")
    snap(page, "rep-day-06-panels-in-sync")


# 7 -------------------------------------------------------------------------------------


def test_closed_deals_read_as_a_record(page, login, snap, world):
    """A lost deal shows when it was lost, no editable next step, no Remove buttons, a grey
    next-best-action box; the manager still sees Reopen."""
    deal, rep = world["deal"], world["rep"]
    services.deal_transition(
        deal=deal, transition="mark_lost", by=rep, loss_reason="price", reason="Budget cut."
    )
    login(page, "rita")
    page.goto(deal.get_absolute_url())
    expect(page.get_by_test_id("closed-on")).to_be_visible()
    expect(page.locator("#deal-header")).not_to_contain_text("Expected close")
    expect(page.get_by_test_id("closed-next-step")).to_be_visible()
    assert page.locator("#panel-next-step form").count() == 0
    assert page.locator("#panel-stakeholders").get_by_role("button", name="Remove").count() == 0
    expect(page.locator("#deal-nba")).to_have_class("nba nba-closed")
    assert page.get_by_text("Schedule a review meeting").count() == 0
    snap(page, "rep-day-07-lost-deal-record")
    page.context.clear_cookies()
    login(page, "mona")
    page.goto(deal.get_absolute_url())
    expect(page.locator("[data-move='reopen']")).to_be_visible()


# 8 -------------------------------------------------------------------------------------


def test_asks_say_where_they_take_the_deal_and_only_move_forward(page, login, snap, world):
    """Beside each answer the ask form says where it takes the deal; a "yes" while
    negotiating keeps the deal in negotiating and points to sending the agreement."""
    deal, rep = world["deal"], world["rep"]
    login(page, "rita")
    page.goto(deal.get_absolute_url())
    expect(page.get_by_test_id("ask-outcome-yes")).to_contain_text("moves to “Asked”")
    expect(page.get_by_test_id("ask-outcome-not_yet")).to_contain_text("moves to “Negotiating”")
    snap(page, "rep-day-08-ask-outcomes-intent")

    services.deal_ask_record(
        deal=deal,
        by=rep,
        channel="call",
        statement="Shall we start on the 1st?",
        answer="not_yet",
        objection={"category": "price", "detail": "Too expensive."},
    )
    objection = deal.objections.get()
    services.objection_resolve(objection=objection, by=rep, resolution="Quarterly billing.")
    page.reload()
    expect(page.get_by_test_id("deal-state")).to_have_text("Negotiating")
    expect(page.get_by_test_id("ask-outcome-yes")).to_contain_text("stays in “Negotiating”")
    asks = page.locator("#panel-asks")
    asks.get_by_label("How you asked").fill("With quarterly billing, shall we go ahead?")
    asks.get_by_label("Yes").check()
    asks.get_by_role("button", name="Record ask").click()
    expect(page.locator("#panel-asks")).to_contain_text("2nd ask")
    expect(page.get_by_test_id("deal-state")).to_have_text("Negotiating")
    expect(page.locator("#deal-nba")).to_contain_text("send the agreement")
    snap(page, "rep-day-08-yes-while-negotiating")
    deal.refresh_from_db()
    assert deal.state == DealState.NEGOTIATING
