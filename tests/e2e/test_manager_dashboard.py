"""A manager reads the pipeline dashboard in headless Chromium and drills into a figure."""

from decimal import Decimal

import pytest

from deals import services


@pytest.mark.django_db(transaction=True)
def test_manager_reads_the_dashboard_and_drills_down(page, login, snap, rep, manager, account):
    """Charts are inline SVG with a table beside them; a number opens the deals behind it."""
    services.deal_create(by=rep, account=account, title="Acme rollout", amount=Decimal("48000"))
    asked = services.deal_create(
        by=rep, account=account, title="Acme pilot", amount=Decimal("8000")
    )
    services.deal_ask_record(
        deal=asked, by=rep, channel="call", statement="Shall we?", answer="yes"
    )
    login(page, "mona")
    page.get_by_role("link", name="Dashboard").click()
    page.wait_for_url("**/dashboard/**")
    assert page.get_by_role("heading", name="Pipeline dashboard").is_visible()
    pipeline = page.locator("section", has=page.get_by_role("heading", name="Pipeline by state"))
    assert pipeline.locator("svg").count() >= 1
    assert "48,000" in pipeline.locator("table").inner_text()
    snap(page, "dashboard-manager")

    pipeline.locator("table a", has_text="1").first.click()
    page.wait_for_url("**/dashboard/deals/**")
    assert page.get_by_role("heading", name="Deals behind the figure").is_visible()
    assert page.get_by_role("link", name="Acme rollout").is_visible()
    snap(page, "dashboard-drilldown")

    page.goto("/dashboard/coaching/")
    assert "Acme pilot" in page.content()
    snap(page, "dashboard-coaching")
