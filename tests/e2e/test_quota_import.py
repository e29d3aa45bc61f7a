"""A manager sets the quarter's quotas from a CSV file and reads attainment on the dashboard."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from closing_crm.celery import app as celery_app
from deals import services
from deals.models import Quota, QuotaPeriod, quota_period_key


@pytest.fixture
def eager_celery():
    """Run the import task in-process after commit, as the worker would."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


@pytest.mark.django_db(transaction=True)
def test_manager_imports_quotas_and_reads_attainment(
    page, login, snap, eager_celery, rep, teammate, manager, account
):
    """The import previews each row, sets the quotas, and the dashboard shows won vs quota."""
    deal = services.deal_create(by=rep, account=account, title="Acme", amount=Decimal("30000"))
    services.deal_transition(deal=deal, transition="override_won", by=manager, reason="Signed.")
    today = timezone.localdate()
    quarter = quota_period_key(
        QuotaPeriod.QUARTER, today.replace(month=3 * ((today.month - 1) // 3) + 1, day=1)
    )
    bad = f"rep,period,currency,amount\nrita,{quarter},EUR,120000\nnobody,{quarter},EUR,5\n"
    good = f"rep,period,currency,amount\nrita,{quarter},EUR,120000\ntim,{quarter},EUR,60000\n"

    login(page, "mona")
    page.goto("/quotas/")
    page.get_by_role("link", name="Import quotas from CSV").click()
    assert page.get_by_label("Quotas").is_checked()
    page.get_by_label("CSV file").set_input_files(
        {"name": "quotas.csv", "mimeType": "text/csv", "buffer": bad.encode()}
    )
    page.get_by_role("button", name="Upload and preview").click()
    errors = page.locator("section.import-errors")
    assert "No active user “nobody”" in errors.inner_text()
    assert page.get_by_role("button", name="Set 1 quota").count() == 0
    snap(page, "quota-import-errors")

    page.get_by_role("link", name="Upload another file").click()
    page.get_by_label("Quotas").check()
    page.get_by_label("CSV file").set_input_files(
        {"name": "quotas.csv", "mimeType": "text/csv", "buffer": good.encode()}
    )
    page.get_by_role("button", name="Upload and preview").click()
    page.get_by_role("button", name="Set 2 quotas").click()
    page.get_by_text("Quotas set: 2 new, 0 changed, 0 unchanged.").wait_for()
    assert Quota.objects.count() == 2

    page.get_by_role("link", name="Attainment on the dashboard").click()
    section = page.locator("#quota-attainment")
    section.wait_for()
    text = section.inner_text()
    assert "120,000 EUR" in text and "30,000 EUR" in text and "60,000 EUR" in text
    assert "180,000 EUR" in text  # the team's quota: both reps, one currency
    snap(page, "quota-attainment")
