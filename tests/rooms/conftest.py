"""Fixtures for the close plan and the buyer room."""

from __future__ import annotations

import importlib

import pytest

from deals import services as deal_services
from deals.models import Stakeholder
from rooms import services
from rooms.models import PlanTemplate


@pytest.fixture
def plan_template(db):
    """The shipped default (transactional tests flush the data migration's rows)."""
    template = PlanTemplate.objects.filter(team__isnull=True, is_default=True).first()
    if template is None:
        shipped = importlib.import_module("rooms.migrations.0002_default_plan_template")

        class Apps:
            @staticmethod
            def get_model(app, name):
                from django.apps import apps

                return apps.get_model(app, name)

        shipped.add_default(Apps, None)
        template = PlanTemplate.objects.get(team__isnull=True, is_default=True)
    return template


@pytest.fixture
def group(deal, rep, contact):
    deal_services.stakeholder_add(deal=deal, by=rep, contact=contact, role=Stakeholder.Role.SIGNER)
    return contact


@pytest.fixture
def room_link(deal, rep, group):
    return services.room_link_issue(deal=deal, by=rep, contact=group)


@pytest.fixture
def room_token(room_link):
    return services.room_token(room_link)


@pytest.fixture
def make_user_contact(rep, account):
    """A contact of the account who is not in the deal's buying group."""
    return deal_services.contact_create(
        by=rep, account=account, first_name="Otto", last_name="Outside", email="otto@acme.example"
    )
