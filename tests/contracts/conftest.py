"""Contract fixtures: a deal with a signer and line items, media in a temp dir, eager Celery."""

from __future__ import annotations

import datetime as dt
import importlib
from decimal import Decimal

import pytest
from celery.signals import task_failure
from django.core.cache import cache

from closing_crm.celery import app as celery_app
from deals import services as deal_services
from deals.models import LineItem, Stakeholder


@pytest.fixture(autouse=True)
def _media_and_celery(settings, tmp_path):
    """Files go to a temp dir; tasks run in-process (eager) when services enqueue them.

    Eager tasks do not propagate (so `self.retry()` re-runs them at once, as a worker would
    later); any task that fails with an exception fails the test instead.
    """
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CONTRACTS_RETRY_BACKOFF_SECONDS = 0
    previous = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = False
    failures = []

    def on_failure(sender=None, exception=None, **kwargs):
        failures.append((sender.name, exception))

    task_failure.connect(on_failure, weak=False)
    cache.clear()
    yield
    task_failure.disconnect(on_failure)
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous
    cache.clear()
    assert not failures, f"Celery tasks failed: {failures}"


@pytest.fixture(autouse=True)
def default_template(db):
    """The template the data migration ships (transactional tests elsewhere flush it)."""
    from contracts.models import ContractTemplate

    shipped = importlib.import_module("contracts.migrations.0002_initial")
    template, _ = ContractTemplate.objects.get_or_create(
        name=shipped.DEFAULT_NAME,
        version=1,
        defaults={"body": shipped.DEFAULT_BODY, "is_default": True},
    )
    return template


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


@pytest.fixture(scope="session")
def docusign_server(tmp_path_factory):
    """One fake DocuSign (REST over HTTP, OAuth over TLS) for the session."""
    from tests.fakes.docusign import FakeDocuSign, rsa_key_pem

    pem, public_key = rsa_key_pem()
    server = FakeDocuSign(tmp_path_factory.mktemp("fake-docusign"), public_key)
    server.private_key_pem = pem
    yield server
    server.stop()


HMAC_KEY = "connect-key-2"


@pytest.fixture
def docusign(docusign_server, settings):
    """Settings pointing the real SDK at the fake; the provider is `docusign`."""
    from contracts.esign.docusign import reset_token_cache

    docusign_server.reset()
    reset_token_cache()
    settings.ESIGN_PROVIDER = "docusign"
    settings.DOCUSIGN_BASE_URL = ""  # discovered from /oauth/userinfo
    settings.DOCUSIGN_OAUTH_HOST = docusign_server.oauth_host
    settings.DOCUSIGN_INTEGRATION_KEY = "integration-key-1"
    settings.DOCUSIGN_USER_ID = "user-guid-1"
    settings.DOCUSIGN_ACCOUNT_ID = ""  # found through /oauth/userinfo
    settings.DOCUSIGN_PRIVATE_KEY = docusign_server.private_key_pem
    settings.DOCUSIGN_CA_BUNDLE = str(docusign_server.cert_path)
    settings.DOCUSIGN_CONNECT_HMAC_KEYS = ["old-connect-key", HMAC_KEY]
    settings.DOCUSIGN_WEBHOOK_URL = "https://crm.example.com/contracts/webhooks/docusign/"
    settings.DOCUSIGN_REDIRECT_URI = "https://crm.example.com/"
    settings.DOCUSIGN_CONNECT_TIMEOUT = 2
    settings.DOCUSIGN_READ_TIMEOUT = 2
    settings.CONTRACTS_MAX_RETRIES = 2
    yield docusign_server
    reset_token_cache()
