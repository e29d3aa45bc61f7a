"""The rep's bell in real Chromium: the buyer opens the signing link, the bell shows 1, the
list opens the deal."""

from __future__ import annotations

import importlib
import re

import pytest

from closing_crm.celery import app as celery_app
from contracts import services as contract_services
from contracts.esign.builtin import signing_url
from contracts.models import ContractTemplate
from deals import services as deal_services
from deals.models import Stakeholder
from notifications.models import Notification


@pytest.fixture
def out_for_signature(rep, deal, contact, settings, tmp_path, live_server):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SITE_URL = live_server.url
    if not ContractTemplate.objects.filter(is_default=True).exists():
        shipped = importlib.import_module("contracts.migrations.0002_initial")
        ContractTemplate.objects.create(
            name=shipped.DEFAULT_NAME, body=shipped.DEFAULT_BODY, is_default=True
        )
    deal_services.stakeholder_add(deal=deal, by=rep, contact=contact, role=Stakeholder.Role.SIGNER)
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    version = contract_services.contract_generate(deal=deal, by=rep)
    contract_services.contract_send(version=version, by=rep, notify=False)
    yield version
    celery_app.conf.task_always_eager = previous


@pytest.mark.django_db(transaction=True)
def test_the_buyer_opens_the_link_and_the_reps_bell_shows_it(
    browser, page, login, snap, out_for_signature, deal
):
    """The bell (polled by htmx) counts the view; the list opens the deal and clears it."""
    login(page, "rita")
    page.goto(deal.get_absolute_url())
    bell = page.get_by_test_id("bell")
    assert bell.get_attribute("hx-trigger").endswith("every 30s")
    assert page.get_by_test_id("bell-count").count() == 0

    buyer = browser.new_context()
    buyer.new_page().goto(signing_url(out_for_signature))
    buyer.close()
    assert Notification.objects.filter(recipient=deal.owner).count() == 1

    page.goto("/")  # the bell loads its count as the page loads, then every 30 s
    page.get_by_test_id("bell-count").wait_for()
    assert page.get_by_test_id("bell-count").inner_text() == "1"
    snap(page, "notifications-bell")
    page.get_by_test_id("bell").click()
    page.wait_for_url(re.compile(r"/notifications/$"))
    snap(page, "notifications-list")
    page.get_by_role("button", name=re.compile("Ann Buyer opened contract version 1")).click()
    page.wait_for_url(re.compile(rf"/deals/{deal.pk}/$"))
    page.get_by_test_id("bell").wait_for()
    page.wait_for_timeout(300)
    assert page.get_by_test_id("bell-count").count() == 0
    assert Notification.objects.get().read_at is not None
