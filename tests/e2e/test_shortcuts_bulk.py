"""Keyboard shortcuts and a bulk action, in real Chromium: a rep moves through My day and the
deal list from the keyboard, ticks two deals and closes them as lost in one go."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from deals import services
from deals.models import Deal, DealEvent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def deals(rep, account):
    today = timezone.localdate()
    return [
        services.deal_create(
            by=rep,
            account=account,
            title=f"{name} rollout",
            amount=Decimal(1000 * (n + 1)),
            next_step="Call the buyer",
            next_step_due=today,
            expected_close_date=today + dt.timedelta(days=10 + n),
        )
        for n, name in enumerate(["Alpha", "Beta", "Gamma"])
    ]


def current(page):
    return page.locator(".kbd-current")


def test_shortcuts_move_through_lists_and_a_bulk_move_reports_each_deal(
    page, login, snap, rep, deals, live_server
):
    login(page, "rita")
    page.goto("/")
    page.keyboard.press("j")
    expect(page.locator(".worklist > li.kbd-current")).to_have_count(1)

    page.keyboard.press("g")
    page.keyboard.press("l")
    page.wait_for_url("**/deals/")

    # "/" focuses the search; typing there never fires a shortcut.
    page.keyboard.press("/")
    search = page.locator("#topsearch-q")
    expect(search).to_be_focused()
    page.keyboard.type("jk?")
    expect(search).to_have_value("jk?")
    expect(current(page)).to_have_count(0)
    expect(page.locator("#shortcuts")).not_to_be_visible()
    search.fill("")
    search.evaluate("element => element.blur()")

    # Nor with a modifier held.
    page.keyboard.press("Control+j")
    page.keyboard.press("Alt+j")
    expect(current(page)).to_have_count(0)

    # j / k move through the rows; x ticks the current one.
    rows = page.locator("#deal-results tbody tr")
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    expect(rows.nth(0)).to_have_class("kbd-current")
    page.keyboard.press("x")
    page.keyboard.press("j")
    page.keyboard.press("x")
    expect(page.get_by_label("Select “Alpha rollout”")).to_be_checked()
    expect(page.get_by_label("Select “Beta rollout”")).to_be_checked()
    expect(page.get_by_label("Select “Gamma rollout”")).not_to_be_checked()
    expect(page.locator("[data-bulk-count]")).to_have_text("2 ticked:")

    # "?" lists the shortcuts.
    page.keyboard.press("?")
    dialog = page.locator("#shortcuts")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Go to the board")
    snap(page, "shortcuts-dialog")
    page.keyboard.press("Escape")
    expect(dialog).not_to_be_visible()

    # The bulk bar asks only for what the chosen action needs.
    loss = page.get_by_label("Loss reason")
    expect(loss).to_be_hidden()
    page.get_by_label("Action").select_option(label="Move: Close as lost")
    expect(loss).to_be_visible()
    loss.select_option(label="Price")
    page.get_by_label("Reason", exact=True).fill("Budget frozen for the year")
    snap(page, "bulk-bar")
    page.set_viewport_size({"width": 390, "height": 844})
    snap(page, "bulk-bar-phone")
    page.set_viewport_size({"width": 1360, "height": 900})
    page.get_by_role("button", name="Apply to selection").click()
    page.get_by_text("2 deals moved (Close as lost).").wait_for()
    expect(page.locator("tr[data-outcome=done]")).to_have_count(2)
    snap(page, "bulk-job-done")
    alpha, beta, gamma = (Deal.objects.get(pk=d.pk) for d in deals)
    assert (alpha.state, beta.state, gamma.state) == (
        "closed_lost",
        "closed_lost",
        "intent_spotted",
    )
    assert alpha.loss_reason == "price" and alpha.loss_note == "Budget frozen for the year"
    assert DealEvent.objects.filter(transition="mark_lost").count() == 2

    # Back on the list, Enter opens the selected row; g b and g d go to the board and My day.
    page.goto("/deals/?state=open")
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{deals[2].get_absolute_url()}")
    # The deal page is on screen (its scripts ran) before the next keys: pressed while the
    # browser was still between the two pages, "g b" went to neither.
    expect(page.locator("h1")).to_contain_text(deals[2].title)
    page.keyboard.press("g")
    page.keyboard.press("b")
    page.wait_for_url("**/board/")
    expect(page.locator("h1")).to_have_text("Pipeline board")
    page.keyboard.press("g")
    page.keyboard.press("d")
    page.wait_for_url(f"{live_server.url}/")
    expect(page.locator("h1")).to_be_visible()
