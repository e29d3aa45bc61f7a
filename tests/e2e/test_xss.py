"""XSS, outside in: a script payload in every text field a rep or buyer can fill, rendered on
every page that shows it, in Chromium with the Content-Security-Policy switched off (so
escaping alone must hold). Nothing runs, no injected element or `javascript:` link appears."""

from __future__ import annotations

import importlib
from decimal import Decimal

import pytest
from django.urls import reverse

from closing_crm.celery import app as celery_app
from deals import services
from deals.models import BuyingSignal, Channel, LossReason, Objection, Stakeholder

pytestmark = pytest.mark.django_db(transaction=True)

PAYLOAD = '\'"><img src=x onerror="window.__xss=1"><script>window.__xss=1</script>'

#: Evaluated on every page and frame: anything the payload managed to create or run.
PROBE = """() => ({
    ran: window.__xss !== undefined,
    images: document.querySelectorAll('img[src="x"]').length,
    scripts: [...document.scripts].filter(s => s.textContent.includes('__xss')).length,
    links: document.querySelectorAll('a[href^="javascript:"]').length,
})"""
CLEAN = {"ran": False, "images": 0, "scripts": 0, "links": 0}


@pytest.fixture
def hostile(rep, team, manager):
    """Every text field of the deals app filled with the payload, through the services."""
    from contracts import services as contract_services
    from contracts.models import ContractTemplate

    shipped = importlib.import_module("contracts.migrations.0002_initial")
    ContractTemplate.objects.get_or_create(
        name=shipped.DEFAULT_NAME,
        version=1,
        defaults={"body": shipped.DEFAULT_BODY, "is_default": True},
    )
    rep.first_name, rep.last_name = PAYLOAD[:60], PAYLOAD[:60]
    rep.save()
    account = services.account_create(
        by=rep, team=team, name=PAYLOAD, website="javascript:window.__xss=1", industry=PAYLOAD
    )
    contact = services.contact_create(
        by=rep,
        account=account,
        first_name=PAYLOAD[:90],
        last_name=PAYLOAD[:90],
        email="buyer@example.com",
        job_title=PAYLOAD[:110],
        phone=PAYLOAD[:40],
    )
    deal = services.deal_create(
        by=rep, account=account, title=PAYLOAD, amount=Decimal("5000"), next_step=PAYLOAD
    )
    services.stakeholder_add(
        deal=deal, by=rep, contact=contact, role=Stakeholder.Role.SIGNER, note=PAYLOAD
    )
    services.buying_signal_record(
        deal=deal, by=rep, kind=BuyingSignal.Kind.PRICING, note=PAYLOAD, channel=Channel.CALL
    )
    services.objection_raise(deal=deal, by=rep, category=Objection.Category.PRICE, detail=PAYLOAD)
    services.concession_propose(deal=deal, by=rep, give=PAYLOAD, get=PAYLOAD)
    services.deal_note_add(deal=deal, by=rep, text=PAYLOAD)
    version = contract_services.contract_generate(deal=deal, by=rep)
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True  # the send task runs on commit, in-process
    try:
        contract_services.contract_send(version=version, by=rep)
    finally:
        celery_app.conf.task_always_eager = previous
    version.refresh_from_db()
    assert version.envelope_id, version.status_reason
    lost = services.deal_create(by=rep, account=account, title=PAYLOAD[:150] + " lost")
    services.deal_transition(
        deal=lost, transition="mark_lost", by=rep, reason=PAYLOAD, loss_reason=LossReason.PRICE
    )
    return {"deal": deal, "account": account, "contact": contact, "version": version}


def _pages(world) -> list[str]:
    deal = world["deal"]
    return [
        reverse("home"),
        reverse("deals:board"),
        reverse("deals:deal_list"),
        reverse("deals:deal_list") + "?state=closed_lost",
        reverse("deals:search") + "?q=img",
        deal.get_absolute_url(),
        reverse("deals:deal_edit", args=[deal.pk]),
        world["account"].get_absolute_url(),
        reverse("deals:account_edit", args=[world["account"].pk]),
        world["contact"].get_absolute_url(),
        reverse("pipeline:dashboard"),
        reverse("pipeline:coaching"),
        reverse("pipeline:dashboard_deals") + "?state=intent_spotted",
        reverse("contracts:preview", args=[world["version"].pk]),
        reverse("contracts:document_html", args=[world["version"].pk]),
    ]


def test_no_payload_runs_on_any_page_without_csp(browser, live_server, hostile, login):
    """With CSP bypassed, every page that shows the hostile values (the rep's and the
    manager's view) stays inert: escaping is the defence, CSP only the second line."""
    context = browser.new_context(base_url=live_server.url, bypass_csp=True)
    context.set_default_timeout(10_000)
    dialogs = []
    try:
        for username in ("rita", "mona"):
            page = context.new_page()
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            login(page, username)
            for url in _pages(hostile):
                response = page.goto(url)
                assert response.status < 500, url
                page.wait_for_load_state("load")
                for frame in page.frames:
                    assert frame.evaluate(PROBE) == CLEAN, f"{username} {url} ({frame.url})"
            page.close()
    finally:
        context.close()
    assert dialogs == []


def test_the_buyers_signing_pages_stay_inert_without_csp(browser, live_server, hostile):
    """The buyer (no account) sees the deal, account and signer names on the signing page
    and the contract document: nothing runs there either."""
    from contracts.esign.builtin import signing_token

    token = signing_token(hostile["version"])
    context = browser.new_context(base_url=live_server.url, bypass_csp=True)
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        for name in ("contracts_public:sign", "contracts_public:document"):
            url = reverse(name, args=[token])
            response = page.goto(url)
            assert response.status == 200, url
            page.wait_for_load_state("load")
            for frame in page.frames:
                assert frame.evaluate(PROBE) == CLEAN, f"{url} ({frame.url})"
    finally:
        context.close()
