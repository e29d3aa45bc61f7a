"""In real Chromium: a deal lost with its contract out; the buyer's link says it was withdrawn."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from contracts.models import ContractVersion
from deals.models import DealState
from tests.e2e import test_builtin_signing

# The same deal with a signer, terms and links to the live server as the signing journey.
contract_deal = test_builtin_signing.contract_deal


@pytest.mark.django_db(transaction=True)
def test_the_buyer_sees_the_contract_was_withdrawn_after_the_loss(
    browser,
    page,
    login,
    snap,
    contract_deal,
    live_server,
):
    """Rep sends the contract, then closes the deal as lost in the browser; the buyer opens
    the emailed link and reads that the contract was withdrawn, with no way to sign."""
    deal = contract_deal
    login(page, "rita")
    page.goto(deal.get_absolute_url())
    panel = page.locator("#contracts-panel")
    panel.get_by_role("button", name="Generate contract").click()
    page.wait_for_load_state()
    panel.get_by_role("link", name="Preview").first.click()
    page.get_by_role("button", name="Send to Ann Buyer").click()
    page.wait_for_url(re.compile(r"/deals/\d+/"))
    emailed = re.search(r"https?://\S+/sign/\S+/", mail.outbox[0].body).group(0)

    page.goto(deal.get_absolute_url())
    page.locator("[data-move=mark_lost]").click()
    page.locator("#transition-form [name=loss_reason]").select_option("competitor")
    page.locator("#transition-form [name=reason]").fill("They chose a competitor")
    page.locator("#transition-form").get_by_role("button", name="Close as lost").click()
    expect(page.locator(".messages")).to_contain_text("is closed as lost")
    deal.refresh_from_db()
    assert deal.state == DealState.CLOSED_LOST
    assert deal.contract_versions.get().status == ContractVersion.Status.VOIDED

    buyer = browser.new_context(viewport={"width": 390, "height": 844})
    buyer_page = buyer.new_page()
    buyer_page.goto(emailed)
    withdrawn = buyer_page.get_by_test_id("withdrawn")
    withdrawn.wait_for()
    assert "This contract was withdrawn" in withdrawn.inner_text()
    assert buyer_page.get_by_role("button", name="Sign the contract").count() == 0
    snap(buyer_page, "contracts-withdrawn-390")
    buyer.close()
