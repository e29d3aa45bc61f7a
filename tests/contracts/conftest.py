"""Contract fixtures: a deal with a signer and line items, media in a temp dir, eager Celery."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.cache import cache

from closing_crm.celery import app as celery_app
from deals import services as deal_services
from deals.models import LineItem, Stakeholder


@pytest.fixture(autouse=True)
def _media_and_celery(settings, tmp_path):
    """Files go to a temp dir; tasks run in-process (eager) when services enqueue them."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CONTRACTS_RETRY_BACKOFF_SECONDS = 0
    previous = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    cache.clear()
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous
    cache.clear()


@pytest.fixture
def signer(rep, deal, contact):
    deal_services.stakeholder_add(deal=deal, by=rep, contact=contact, role=Stakeholder.Role.SIGNER)
    return contact


@pytest.fixture
def termed_deal(deal, signer):
    """The deal with commercial terms a contract shows."""
    LineItem.objects.create(
        deal=deal, description="Platform licence", quantity=Decimal("10"), unit_price="1000"
    )
    LineItem.objects.create(
        deal=deal, description="Onboarding package", quantity=Decimal("1"), unit_price="2000"
    )
    deal.term_months = 24
    deal.start_date = dt.date(2027, 1, 1)
    deal.billing = "quarterly"
    deal.save()
    return deal


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks):
    """Run a service and then its after-commit work (the Celery tasks, eagerly)."""

    def _run(func, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return func(**kwargs)

    return _run
