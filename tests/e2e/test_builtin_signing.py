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


def _emailed_links() -> dict[str, str]:
    found = {}
    for message in mail.outbox:
        match = re.search(r"https?://\S+/sign/\S+/", message.body)
        if match:
            found[message.to[0]] = match.group(0)
    return found


def _sign_as(browser, url: str, name: str, snap=None, shot: str = "") -> None:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    signer_page = context.new_page()
    signer_page.goto(url)
    signer_page.get_by_label("Type your full name").fill(name)
    signer_page.get_by_label(re.compile("agree to sign it electronically")).check()
    signer_page.get_by_role("button", name="Sign the contract").click()
    signer_page.get_by_test_id(re.compile("^signed")).first.wait_for()
    if snap and shot:
        snap(signer_page, shot)
    context.close()


@pytest.mark.django_db(transaction=True)
def test_two_buyers_then_the_manager_countersigns_and_the_sealed_pdf_verifies(
    browser, page, login, snap, contract_deal, live_server, manager, account, tmp_path
):
    """Ann, then Bob, then Mona (the team's manager) sign in their browsers, each with their
    own emailed link in their turn; the deal is won by the last signature; the signed PDF
    carries a valid seal and the verify page recognises it, and a changed copy as modified."""
    from contracts import sealing
    from contracts.esign.builtin import signing_url

    deal = contract_deal
    team = deal.team
    team.countersign_contracts = True
    team.save()
    bob = deal_services.contact_create(
        by=deal.owner,
        account=account,
        first_name="Bob",
        last_name="Finance",
        email="bob@acme.example",
    )
    deal_services.stakeholder_add(deal=deal, by=deal.owner, contact=bob, role="signer")

    login(page, "rita")
    page.goto(deal.get_absolute_url())
    panel = page.locator("#contracts-panel")
    assert "then countersigned by" in panel.inner_text()
    panel.get_by_label("How the buyer's signers sign").select_option("sequence")
    panel.get_by_role("button", name="Generate contract").click()
    page.wait_for_load_state()
    assert "Ann Buyer, Bob Finance, Mona to sign, in this order" in page.content()
    panel.get_by_role("button", name="Send for signature").click()
    page.wait_for_load_state()
    snap(page, "contracts-three-signers-sent")
    assert list(_emailed_links()) == ["ann@acme.example"]
    version = ContractVersion.objects.get(deal=deal)
    ann, bob_signer, mona = list(version.signers.order_by("routing_order"))

    # Bob's link before his turn: a clear refusal page.
    early = browser.new_context()
    early_page = early.new_page()
    response = early_page.goto(signing_url(version, bob_signer))
    assert response.status == 403
    assert "Not your turn yet" in early_page.content()
    snap(early_page, "contracts-not-your-turn")
    early.close()

    ann_link = _emailed_links()["ann@acme.example"]
    mail.outbox.clear()
    _sign_as(browser, ann_link, "Ann Buyer", snap, "contracts-ann-signed")
    deal.refresh_from_db()
    assert deal.state == DealState.AGREEMENT_SENT
    page.goto(deal.get_absolute_url())
    signers = page.get_by_test_id("version-signers")
    assert re.search(r"Ann Buyer\s+signed", signers.inner_text())
    assert re.search(r"Bob Finance\s+due since", signers.inner_text())
    snap(page, "contracts-panel-one-of-three")

    links = _emailed_links()
    assert list(links) == ["bob@acme.example"]
    mail.outbox.clear()
    _sign_as(browser, links["bob@acme.example"], "Bob Finance")
    deal.refresh_from_db()
    assert deal.state == DealState.AGREEMENT_SENT
    links = _emailed_links()
    assert list(links) == [manager.email]
    mail.outbox.clear()
    _sign_as(browser, links[manager.email], "Mona", snap, "contracts-countersigned")

    deal.refresh_from_db()
    version.refresh_from_db()
    assert deal.state == DealState.CLOSED_WON
    assert version.status == ContractVersion.Status.COMPLETED and version.sealed_at
    copies = [m for m in mail.outbox if m.subject.startswith("Signed:")]
    assert len(copies) == 1 and len(copies[0].to) == 4

    page.goto(deal.get_absolute_url())
    href = (
        page.locator("#contracts-panel")
        .get_by_role("link", name="Signed PDF")
        .get_attribute("href")
    )
    signed = page.request.get(href).body()
    assert sealing.check_pdf(signed).valid
    snap(page, "contracts-panel-three-signed")

    original = tmp_path / "signed.pdf"
    original.write_bytes(signed)
    page.goto(live_server.url + "/contracts/verify/")
    page.get_by_label("Signed contract (PDF)").set_input_files(str(original))
    page.get_by_role("button", name="Check the PDF").click()
    result = page.get_by_test_id("verify-result")
    assert result.get_attribute("data-outcome") == "unmodified"
    assert "Signed by 3 signers" in result.inner_text()
    assert "Acme rollout" in result.inner_text()
    snap(page, "contracts-verify-unmodified")

    changed = bytearray(signed)
    changed[len(signed) // 4] ^= 0x01
    tampered = tmp_path / "tampered.pdf"
    tampered.write_bytes(bytes(changed))
    outsider = browser.new_context()
    public = outsider.new_page()
    public.goto(live_server.url + "/verify/")
    public.get_by_label("Signed contract (PDF)").set_input_files(str(tampered))
    public.get_by_role("button", name="Check the PDF").click()
    result = public.get_by_test_id("verify-result")
    assert result.get_attribute("data-outcome") == "modified"
    assert "Modified" in result.inner_text()
    snap(public, "contracts-verify-modified")
    outsider.close()
