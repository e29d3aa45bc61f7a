"""A manager hands a deal to a teammate from the deal page, in real Chromium."""

from __future__ import annotations

import pytest

from deals.models import DealEvent
from notifications.models import Notification
from tests.conftest import make_user


@pytest.mark.django_db(transaction=True)
def test_a_manager_changes_the_owner_from_the_deal_page(page, login, snap, deal, manager):
    """The panel opens, the form posts with htmx, and the page names the new owner in place."""
    make_user("nora", deal.team)
    login(page, "mona")
    page.goto(deal.get_absolute_url())
    panel = page.locator("#panel-owner")
    assert "Rita" in panel.get_by_test_id("deal-owner").inner_text()
    panel.get_by_text("Change owner", exact=True).first.click()
    panel.get_by_role("button", name="Change owner").click()  # nothing chosen yet
    panel.get_by_text("Choose who takes the deal over.").wait_for()
    snap(page, "reassign-errors")
    panel = page.locator("#panel-owner")
    panel.get_by_label("New owner").select_option(label="Nora")
    panel.get_by_label("Reason").fill("Rita moves to the partner team")
    panel.get_by_role("button", name="Change owner").click()
    page.locator("#panel-owner [data-testid=deal-owner]", has_text="Nora").wait_for()
    snap(page, "reassign-done")
    assert page.url.endswith(deal.get_absolute_url())  # htmx: no reload
    event = DealEvent.objects.get(deal=deal, kind=DealEvent.Kind.OWNER)
    assert "Rita moves to the partner team" in event.reason
    assert Notification.objects.filter(recipient__username="nora").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_manager_reassigns_selected_deals_from_the_list(
    page, login, snap, deal, make_deal, manager
):
    """Tick two deals, choose "Reassign to…", the new owner and a reason: the job page says
    what moved."""
    make_user("nora", deal.team)
    second = make_deal(title="Beta expansion")
    login(page, "mona")
    page.goto("/deals/")
    page.get_by_label("Select “Acme rollout”").check()
    page.get_by_label("Select “Beta expansion”").check()
    page.get_by_label("Action").select_option(label="Reassign to…")
    page.get_by_label("New owner").select_option(label="Nora")
    page.get_by_label("Reason", exact=True).fill("Rita leaves")
    snap(page, "reassign-list")
    page.get_by_role("button", name="Apply to selection").click()
    page.get_by_text("2 deals now owned by Nora").wait_for()
    page.set_viewport_size({"width": 390, "height": 844})
    snap(page, "reassign-list-phone")
    for moved in (deal, second):
        moved.refresh_from_db()
        assert moved.owner.username == "nora"
