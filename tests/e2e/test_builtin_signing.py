"""The built-in signer in real headless Chromium: rep sends, buyer signs, the deal is won."""

from __future__ import annotations

import datetime as dt
import importlib
import re

import pytest
import time_machine
from django.core import mail

from closing_crm.celery import app as celery_app
from contracts.models import ContractTemplate, ContractVersion
from deals import services as deal_services
from deals.models import DealState, LineItem, Stakeholder


@pytest.fixture
def contract_deal(rep, deal, contact, settings, tmp_path, live_server):
    """A deal with a signer and terms; links point at the live server; tasks run eagerly."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SITE_URL = live_server.url
    if not ContractTemplate.objects.filter(is_default=True).exists():
        # Transactional tests flush the data migration's rows: put the shipped default back.
        shipped = importlib.import_module("contracts.migrations.0002_initial")
        ContractTemplate.objects.create(
            name=shipped.DEFAULT_NAME, body=shipped.DEFAULT_BODY, is_default=True
        )
    deal_services.stakeholder_add(deal=deal, by=rep, contact=contact, role=Stakeholder.Role.SIGNER)
    LineItem.objects.create(deal=deal, description="Platform licence", quantity=12, unit_price=1000)
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield deal
    celery_app.conf.task_always_eager = previous


@pytest.mark.django_db(transaction=True)
def test_buyer_signs_in_the_browser_and_the_rep_sees_the_signed_pdf(
    browser, page, login, snap, contract_deal, live_server
):
    """Generate, preview, send; the buyer opens the emailed link and signs; the deal is won."""
    deal = contract_deal
    login(page, "rita")
    page.goto(deal.get_absolute_url())
    panel = page.locator("#contracts-panel")
    panel.get_by_role("button", name="Generate contract").click()
    page.wait_for_load_state()
    assert "Contract version 1 generated" in page.content()
    panel.get_by_role("link", name="Preview").first.click()
    page.wait_for_url(re.compile(r"/contracts/versions/\d+/$"))
    frame = page.frame_locator("iframe.ct-frame")
    assert "Platform licence" in frame.locator("body").inner_text()
    snap(page, "contracts-preview")
    page.get_by_role("button", name="Send to Ann Buyer").click()
    page.wait_for_url(re.compile(r"/deals/\d+/"))
    assert "on its way to Ann Buyer" in page.content()
    snap(page, "contracts-panel-sent")

    deal.refresh_from_db()
    assert deal.state == DealState.AGREEMENT_SENT
    link = page.get_by_test_id("signing-link").input_value()
    assert link.startswith(live_server.url + "/sign/")
    assert len(mail.outbox) == 1
    emailed = re.search(r"https?://\S+/sign/\S+/", mail.outbox[0].body).group(0)
    # Both links carry the same signed payload; their timestamps may differ by a second.
    assert emailed.rsplit(":", 2)[0] == link.rsplit(":", 2)[0]

    buyer = browser.new_context(viewport={"width": 1100, "height": 900})
    buyer_page = buyer.new_page()
    buyer_page.goto(emailed)
    assert "Acme GmbH" in buyer_page.content()
    snap(buyer_page, "contracts-sign-page")
    buyer_page.get_by_label("Type your full name").fill("Ann Buyer")
    buyer_page.get_by_label(re.compile("agree to sign it electronically")).check()
    buyer_page.get_by_role("button", name="Sign the contract").click()
    buyer_page.get_by_test_id("signed").wait_for()
    snap(buyer_page, "contracts-signed")
    buyer.close()

    deal.refresh_from_db()
    version = ContractVersion.objects.get(deal=deal)
    assert version.status == ContractVersion.Status.COMPLETED
    assert deal.state == DealState.CLOSED_WON

    page.goto(deal.get_absolute_url())
    signed_link = page.locator("#contracts-panel").get_by_role("link", name="Signed PDF")
    href = signed_link.get_attribute("href")
    response = page.request.get(href)
    assert response.status == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.body().startswith(b"%PDF")
    snap(page, "contracts-panel-won")


@pytest.mark.django_db(transaction=True)
def test_tampered_and_withdrawn_links_are_refused(browser, login, page, contract_deal, snap):
    """A changed token shows a refusal; a month-old link still opens while its version is
    out for signature, and dies as soon as the version is voided."""
    from contracts import services
    from contracts.esign.builtin import signing_url

    deal = contract_deal
    version = services.contract_generate(deal=deal, by=deal.owner)
    services.contract_send(version=version, by=deal.owner, notify=False)
    link = signing_url(version)

    buyer = browser.new_context()
    buyer_page = buyer.new_page()
    response = buyer_page.goto(link[:-3] + "abc/")
    assert response.status == 403
    assert "not valid" in buyer_page.content()
    snap(buyer_page, "contracts-link-tampered")
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(days=30), tick=True):
        response = buyer_page.goto(link)
    assert response.status == 200
    services.contract_void(version=version, by=deal.owner, reason="Wrong amount")
    response = buyer_page.goto(link)
    assert response.status == 403
    assert "withdrawn" in buyer_page.content()
    buyer.close()
    version.refresh_from_db()
    assert version.status == ContractVersion.Status.VOIDED
