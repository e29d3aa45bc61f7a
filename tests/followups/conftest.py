"""Follow-up fixtures: contract versions sent through the real signal, an eager Celery."""

from __future__ import annotations

import datetime as dt
import importlib

import pytest
from django.apps import apps
from django.db import transaction
from django.utils import timezone

from contracts.models import ContractVersion
from contracts.signals import contract_sent, contract_withdrawn
from deals import services as deal_services
from deals.models import Stakeholder

ALWAYS = {"working_days": "0123456", "workday_start": "00:00", "workday_end": "23:59:59"}


@pytest.fixture(autouse=True)
def default_cadence(db):
    """The default cadence the data migration ships; transactional tests flush it away, so
    it is put back the same way (running the migration's own function)."""
    migration = importlib.import_module("followups.migrations.0002_default_cadence")
    migration.create_default(apps, None)


@pytest.fixture
def always_working(rep):
    """A rep who works every hour of every day, so sending never waits for office hours."""
    for field, value in ALWAYS.items():
        setattr(rep, field, value)
    rep.time_zone = "UTC"
    rep.save()
    rep.refresh_from_db()
    return rep


@pytest.fixture
def signer(rep, deal, contact):
    deal_services.stakeholder_add(deal=deal, by=rep, contact=contact, role=Stakeholder.Role.SIGNER)
    return contact


def make_version(deal, number: int = 1, sent_at=None, **fields) -> ContractVersion:
    return ContractVersion.objects.create(
        deal=deal,
        number=number,
        status=ContractVersion.Status.SENT,
        sent_at=sent_at or timezone.now(),
        **fields,
    )


def send_contract(version: ContractVersion, by=None) -> None:
    """What the contracts app does: the signal inside the sending transaction."""
    with transaction.atomic():
        contract_sent.send(sender=ContractVersion, version=version, by=by)


def withdraw_contract(version: ContractVersion) -> None:
    with transaction.atomic():
        version.status = ContractVersion.Status.VOIDED
        version.save(update_fields=["status"])
        contract_withdrawn.send(sender=ContractVersion, version=version)


@pytest.fixture
def sent_version(deal, signer, rep):
    version = make_version(deal, sent_at=timezone.now() - dt.timedelta(days=30))
    send_contract(version, by=rep)
    return version


@pytest.fixture
def eager_celery():
    """Run tasks in-process for tests that are not about the worker."""
    from closing_crm.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = previous
