"""A rep works a deal from intent to lost in real Chromium; a manager reopens it."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from deals import services
from deals.models import DealState
from tests.conftest import make_user


@pytest.fixture
def journey(db):
    from deals.models import Team, User

    team = Team.objects.create(name="Team North", currency="EUR")
    rep = make_user("rita", team)
    manager = make_user("mona", team, User.Role.MANAGER)
    account = services.account_create(by=rep, team=team, name="Acme GmbH")
    ann = services.contact_create(
        by=rep, account=account, first_name="Ann", last_name="Buyer", job_title="COO"
    )
    deal = services.deal_create(
        by=rep,
        account=account,
        title="Acme rollout",
        amount=Decimal("48000"),
        expected_close_date=timezone.localdate() + dt.timedelta(days=21),
        next_step="Demo for the COO",
        next_step_due=timezone.localdate() + dt.timedelta(days=2),
    )
    services.stakeholder_add(deal=deal, by=rep, contact=ann, role="decision_maker")
    services.stakeholder_add(deal=deal, by=rep, contact=ann, role="signer")
    other = services.account_create(by=rep, team=team, name="Globex")
    likely = services.deal_create(
        by=rep,
        account=other,
        title="Globex pilot",
        amount=Decimal("9000"),
        expected_close_date=timezone.localdate() + dt.timedelta(days=10),
    )
    services.deal_readiness_set(
        deal=likely,
        by=rep,
        items={"ready_needs_understood": True, "ready_solution_fits": True},
    )
    services.buying_signal_record(
        deal=likely, by=rep, kind="timeline", note="Can we start in May?", channel="call"
    )
    services.deal_create(by=rep, account=other, title="Globex add-on", amount=Decimal("1000"))
    return {"rep": rep, "manager": manager, "deal": deal, "likely": likely}


@pytest.mark.django_db(transaction=True)
def test_rep_closes_a_deal_lost_and_a_manager_reopens_it(page, login, snap, journey):
    """Signal, readiness, a “not yet” with its objection, resolved, asked again, lost with a
    reason; the rep lands on the next likeliest deal; the manager reopens the lost one."""
    deal, likely = journey["deal"], journey["likely"]
    login(page, "rita")
    page.goto(deal.get_absolute_url())
    expect(page.get_by_test_id("deal-state")).to_have_text("Intent spotted")
    snap(page, "deal-01-intent")

    signals = page.locator("#panel-signals")
    signals.get_by_label("What did you notice?").select_option("pricing")
    signals.get_by_label("The buyer's words").fill("Is quarterly billing possible?")
    signals.get_by_role("button", name="Log signal").click()
    expect(page.locator("#panel-signals")).to_contain_text("Is quarterly billing possible?")
    expect(page.locator("#deal-timeline")).to_contain_text("Is quarterly billing possible?")

    # "Decision maker and signer known" is derived from the buying group (Ann is both).
    readiness = page.locator("#panel-readiness")
    expect(readiness.get_by_label("Decision maker and signer known")).to_be_checked()
    for label in (
        "Needs understood",
        "Solution fits",
        "Value established",
        "Budget and timing confirmed",
    ):
        page.locator("#panel-readiness").get_by_label(label).check()
        page.wait_for_load_state("networkidle")
    expect(page.get_by_test_id("readiness-score")).to_have_text("5/6")
    expect(page.locator("#deal-nba")).to_contain_text("Readiness 5/6: ask for the sale")
    expect(page.locator("#deal-nba")).to_contain_text("summary close")

    asks = page.locator("#panel-asks")
    objection_fields = asks.locator(".objection-fields")
    expect(objection_fields).to_be_hidden()
    asks.get_by_label("How you asked").fill("Shall we start with the pilot team on the 1st?")
    asks.get_by_label("Not yet (objection)").check()
    expect(objection_fields).to_be_visible()
    asks.get_by_label("Objection", exact=True).select_option("price")
    asks.get_by_label("What is holding them back?").fill("The budget is spent until Q3")
    asks.get_by_role("button", name="Record ask").click()
    expect(page.locator("#panel-asks li.ask")).to_have_count(1)
    expect(page.locator("#panel-asks li.ask")).to_contain_text("1st ask")
    expect(page.get_by_test_id("deal-state")).to_have_text("Negotiating")
    expect(page.locator("#deal-nba")).to_contain_text("Resolve the price objection")
    snap(page, "deal-02-objection")

    objections = page.locator("#panel-objections")
    objections.get_by_label("How was it settled?").fill("Quarterly billing from July")
    objections.get_by_role("button", name="Settle").click()
    expect(page.locator("#panel-objections")).to_contain_text("Settled: Quarterly billing")
    expect(page.locator("#deal-nba")).to_contain_text("make the 2nd ask")

    asks = page.locator("#panel-asks")
    asks.get_by_label("How you asked").fill("With quarterly billing, shall we go ahead?")
    asks.get_by_label("No", exact=True).check()
    asks.get_by_role("button", name="Record ask").click()
    expect(page.locator("#panel-asks li.ask")).to_have_count(2)
    expect(page.locator("#panel-asks li.ask").nth(1)).to_contain_text("2nd ask")
    snap(page, "deal-03-asked-again")

    page.get_by_role("link", name="Close as lost…").click()
    form = page.locator("#transition-form")
    expect(form).to_contain_text("Thank Ann")
    form.get_by_label("Loss reason").select_option("no_budget")
    form.get_by_label("Note for the record").fill("Budget frozen for the year")
    snap(page, "deal-04-lost-form")
    form.get_by_role("button", name="Close as lost").click()
    page.wait_for_url(re.compile(rf"/deals/{likely.pk}/\?after_lost={deal.pk}"))
    expect(page.get_by_test_id("after-lost")).to_contain_text("Ranked by readiness score first")
    expect(page.locator(".messages")).to_contain_text("Thank Ann Buyer")
    snap(page, "deal-05-next-likeliest")
    deal.refresh_from_db()
    assert (deal.state, deal.loss_reason) == (DealState.CLOSED_LOST, "no_budget")

    page.context.clear_cookies()
    login(page, "mona")
    page.goto(deal.get_absolute_url())
    page.get_by_role("link", name="Reopen…").click()
    page.locator("#transition-form").get_by_label("Why is the deal reopened?").fill(
        "New budget approved in September"
    )
    page.locator("#transition-form").get_by_role("button", name="Reopen").click()
    expect(page.get_by_test_id("deal-state")).to_have_text("Intent spotted")
    expect(page.locator("#deal-timeline")).to_contain_text("New budget approved in September")
    snap(page, "deal-06-reopened")


@pytest.mark.django_db(transaction=True)
def test_the_deal_page_reads_well_on_a_phone(browser, live_server, login, snap, journey):
    """One column on a narrow screen; the moves are still reachable."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        login(page, "rita")
        page.goto(journey["deal"].get_absolute_url())
        expect(page.get_by_role("link", name="Ask for the sale ↓")).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 400, f"the page scrolls sideways ({width}px)"
        snap(page, "deal-07-phone")
    finally:
        context.close()


@pytest.mark.django_db(transaction=True)
def test_manager_overrides_to_won_and_the_handoff_starts(page, login, snap, journey):
    """The override asks for a reason; the won page hands the customer over and spawns
    follow-on deals from needs found during the sale."""
    deal = journey["deal"]
    login(page, "mona")
    page.goto(deal.get_absolute_url())
    page.get_by_role("link", name="Override to won…").click()
    form = page.locator("#transition-form")
    form.get_by_role("button", name="Override to won").click()
    expect(page.locator("#transition-form")).to_contain_text("Write the reason")
    page.locator("#transition-form").get_by_label("Why is this deal won").fill(
        "Signed on paper at the trade fair"
    )
    page.locator("#transition-form").get_by_role("button", name="Override to won").click()
    expect(page.get_by_test_id("deal-state")).to_have_text("Closed / won")
    handoff = page.locator("#panel-handoff")
    expect(handoff).to_contain_text("Account manager: Mona")
    handoff.locator("li", has_text="Introduce the account manager").get_by_role(
        "button", name="Mark done"
    ).click()
    expect(page.locator("#panel-handoff")).to_contain_text("3 open")
    handoff = page.locator("#panel-handoff")
    handoff.get_by_label("Follow-on deal").fill("Acme EU rollout")
    handoff.get_by_label("Need found during the sale").fill("The EU team wants the same")
    handoff.get_by_label("Estimated amount").fill("20000")
    handoff.get_by_role("button", name="Open follow-on deal").click()
    expect(page.locator("#panel-handoff")).to_contain_text("Acme EU rollout")
    snap(page, "deal-08-won-handoff")
    assert deal.follow_on_deals.get().title == "Acme EU rollout"
    page.goto("/state-machine/")
    expect(page.get_by_role("table")).to_contain_text("Override to won")
    snap(page, "state-machine")
