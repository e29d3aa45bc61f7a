"""Status decisions on PostgreSQL under real concurrency: 20 connections decide the same
thing at the same moment; exactly one wins, the others get a conflict in plain words,
and the deal's timeline shows one event."""

from __future__ import annotations

import pytest

from deals import services
from deals.models import Account, Contact, Deal, DealEvent, Objection, OnboardingStep, Stakeholder
from tests.concurrency import one_winner, run_concurrently

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_twenty_people_resolving_one_objection(postgres, deal, rep):
    """One resolution is kept; the others are told the objection is no longer open."""
    objection = services.objection_raise(deal=deal, by=rep, category="price", detail="Too much")
    outcomes = run_concurrently(
        lambda o: services.objection_resolve(
            objection=o, by=rep, resolution=f"Resolved by attempt {id(o)}"
        ),
        load=lambda: Objection.objects.select_related("deal").get(pk=objection.pk),
    )
    winner, errors = one_winner(outcomes)
    assert all("no longer open" in e.message for e in errors)
    objection.refresh_from_db()
    assert objection.status == Objection.Status.RESOLVED
    assert objection.resolution == winner.result.resolution
    resolved = deal.events.filter(kind=DealEvent.Kind.OBJECTION, data__status="resolved")
    assert resolved.count() == 1


def test_resolving_and_accepting_a_loss_at_once(postgres, deal, rep, manager):
    """A "resolved" and an "accepted loss" racing: one decision stands, never both."""
    objection = services.objection_raise(deal=deal, by=rep, category="need", detail="No need")
    outcomes = run_concurrently(
        lambda o: services.objection_resolve(
            objection=o, by=rep, resolution="Decided", accepted_loss=id(o) % 2 == 0
        ),
        load=lambda: Objection.objects.get(pk=objection.pk),
        threads=10,
    )
    winner, _ = one_winner(outcomes)
    objection.refresh_from_db()
    assert objection.status == winner.result.status
    decisions = deal.events.filter(kind=DealEvent.Kind.OBJECTION).exclude(data__status="open")
    assert decisions.count() == 1


def test_twenty_people_archiving_one_deal(postgres, deal, rep):
    """One archive is recorded; the others are told it is already archived."""
    outcomes = run_concurrently(
        lambda d: services.deal_archive(deal=d, by=rep, reason="Duplicate"),
        load=lambda: Deal.objects.get(pk=deal.pk),
    )
    winner, errors = one_winner(outcomes)
    assert all("already archived" in e.message for e in errors)
    assert Deal.objects.get(pk=deal.pk).archived_at == winner.result.archived_at
    assert deal.events.filter(kind=DealEvent.Kind.NOTE, data__archived=True).count() == 1


def test_twenty_people_archiving_one_account(postgres, account, rep):
    """One archive of an account wins; the archive date is the winner's."""
    outcomes = run_concurrently(
        lambda a: services.account_archive(account=a, by=rep),
        load=lambda: Account.objects.get(pk=account.pk),
    )
    winner, errors = one_winner(outcomes)
    assert all("already archived" in e.message for e in errors)
    assert Account.objects.get(pk=account.pk).archived_at == winner.result.archived_at


def test_twenty_people_archiving_one_contact(postgres, contact, rep):
    """One archive of a contact wins; the archive date is the winner's."""
    outcomes = run_concurrently(
        lambda c: services.contact_archive(contact=c, by=rep),
        load=lambda: Contact.objects.select_related("account").get(pk=contact.pk),
    )
    winner, errors = one_winner(outcomes)
    assert all("already archived" in e.message for e in errors)
    assert Contact.objects.get(pk=contact.pk).archived_at == winner.result.archived_at


def test_twenty_people_completing_one_onboarding_step(postgres, deal, manager):
    """One "done" is recorded with its author; the others learn who did it."""
    services.deal_transition(
        deal=deal, transition="override_won", by=manager, reason="Signed on paper"
    )
    step = deal.onboarding_steps.get(kind=OnboardingStep.Kind.KICKOFF)
    outcomes = run_concurrently(
        lambda s: services.onboarding_step_complete(step=s, by=manager),
        load=lambda: OnboardingStep.objects.select_related("deal").get(pk=step.pk),
    )
    _, errors = one_winner(outcomes)
    assert all("already done" in e.message and str(manager) in e.message for e in errors)
    done = deal.events.filter(kind=DealEvent.Kind.HANDOFF, reason__contains="Kickoff")
    assert done.count() == 1


def test_twenty_people_removing_one_stakeholder(postgres, deal, rep, contact):
    """The stakeholder is removed once; the others are told it is gone already."""
    stakeholder = services.stakeholder_add(deal=deal, by=rep, contact=contact, role="champion")
    outcomes = run_concurrently(
        lambda s: services.stakeholder_remove(stakeholder=s, by=rep),
        load=lambda: Stakeholder.objects.select_related("deal", "contact").get(pk=stakeholder.pk),
    )
    _, errors = one_winner(outcomes)
    assert all("already removed" in e.message for e in errors)
    assert not Stakeholder.objects.filter(pk=stakeholder.pk).exists()
    removed = deal.events.filter(kind=DealEvent.Kind.STAKEHOLDER, data__removed=True)
    assert removed.count() == 1


def test_reloading_deals_in_many_threads_at_once(postgres, deal):
    """A deal reloads safely while other threads reload it too (django-fsm lifts the state
    field's protection for every thread while one reloads)."""
    outcomes = run_concurrently(
        lambda d: [d.refresh_from_db() for _ in range(30)][-1],
        load=lambda: Deal.objects.get(pk=deal.pk),
    )
    assert [o.error for o in outcomes if o.error] == []


def test_twenty_archive_clicks_on_the_deal_page(postgres, deal, rep):
    """Twenty browser tabs archive the same deal at once: one archives it; the others are
    told so (or find it gone); nobody gets a server error."""
    from django.contrib.messages import get_messages
    from django.test import Client

    def tab():
        client = Client()
        client.force_login(rep)
        return client

    url = f"/deals/{deal.pk}/archive/"
    outcomes = run_concurrently(lambda client: client.post(url), load=tab)
    assert [o.error for o in outcomes if o.error] == []
    said = [
        [str(m) for m in get_messages(o.result.wsgi_request)]
        for o in outcomes
        if o.result.status_code == 302
    ]
    assert all(o.result.status_code in (302, 404) for o in outcomes)
    assert sum("is archived: it no longer shows" in m[0] for m in said) == 1
    assert all("already archived" in m[0] for m in said if "is archived:" not in m[0])
    assert deal.events.filter(kind=DealEvent.Kind.NOTE, data__archived=True).count() == 1
