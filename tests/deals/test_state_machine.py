"""The deal state machine: every (state, transition) pair, guards, permissions, audit, atomicity."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from contracts.models import ContractVersion
from deals import services
from deals.models import Account, Deal, DealEvent, DealState, OnboardingStep

# The closing process of shared/DOMAIN.md, written out independently of the model.
ALLOWED = {
    DealState.INTENT_SPOTTED: {"ask", "send_agreement", "override_won", "mark_lost"},
    DealState.ASKED: {"send_agreement", "negotiate", "override_won", "mark_lost"},
    DealState.AGREEMENT_SENT: {"negotiate", "follow_up", "mark_won", "override_won", "mark_lost"},
    DealState.NEGOTIATING: {"ask", "send_agreement", "mark_won", "override_won", "mark_lost"},
    DealState.FOLLOW_UP: {"negotiate", "mark_won", "override_won", "mark_lost"},
    DealState.CLOSED_WON: set(),
    DealState.CLOSED_LOST: {"reopen"},
}

# How to walk a fresh deal to each state, as the manager of the team.
PATHS = {
    DealState.INTENT_SPOTTED: [],
    DealState.ASKED: ["ask"],
    DealState.AGREEMENT_SENT: ["send_agreement"],
    DealState.NEGOTIATING: ["ask", "negotiate"],
    DealState.FOLLOW_UP: ["send_agreement", "follow_up"],
    DealState.CLOSED_WON: ["override_won"],
    DealState.CLOSED_LOST: ["mark_lost"],
}

INPUTS = {"reason": "Because the test says so", "loss_reason": "price"}


def add_contract(deal: Deal, status=ContractVersion.Status.DRAFT) -> ContractVersion:
    number = deal.contract_versions.count() + 1
    return ContractVersion.objects.create(deal=deal, number=number, status=status)


def fire(deal, name, by, **kwargs):
    params = {**INPUTS, **kwargs} if name in ("mark_lost", "override_won", "reopen") else kwargs
    return services.deal_transition(deal=deal, transition=name, by=by, **params)


def walk_to(deal: Deal, state: str, by) -> Deal:
    for name in PATHS[state]:
        if name == "send_agreement":
            add_contract(deal)
        fire(deal, name, by)
    assert deal.state == state
    return deal


@pytest.mark.parametrize("state", list(ALLOWED))
@pytest.mark.parametrize("name", services.TRANSITION_NAMES)
def test_transition_matrix(deal, manager, state, name):
    """Allowed moves succeed with exactly one audit event; forbidden ones change nothing."""
    walk_to(deal, state, manager)
    add_contract(deal)  # something sendable, so only the state decides send_agreement
    if name == "mark_won":
        add_contract(deal, ContractVersion.Status.COMPLETED)
    events_before = DealEvent.objects.filter(deal=deal, kind=DealEvent.Kind.TRANSITION).count()

    if name in ALLOWED[state]:
        fire(deal, name, manager)
        deal.refresh_from_db()
        transitions = DealEvent.objects.filter(deal=deal, kind=DealEvent.Kind.TRANSITION)
        assert transitions.count() == events_before + 1
        event = transitions.first()
        assert (event.from_state, event.transition, event.actor) == (state, name, manager)
        assert event.to_state == deal.state != state
    else:
        with pytest.raises(services.TransitionBlocked):
            fire(deal, name, manager)
        deal.refresh_from_db()
        assert deal.state == state
        assert (
            DealEvent.objects.filter(deal=deal, kind=DealEvent.Kind.TRANSITION).count()
            == events_before
        )


def test_state_field_cannot_be_written_directly(deal):
    """The state is protected: only transition methods (fired by services) change it."""
    with pytest.raises(AttributeError):
        deal.state = DealState.CLOSED_WON


def test_agreement_needs_a_contract(deal, rep):
    """No agreement_sent without a contract version to send."""
    with pytest.raises(services.TransitionBlocked, match="Generate a contract first"):
        fire(deal, "send_agreement", rep)
    add_contract(deal)
    fire(deal, "send_agreement", rep)
    assert deal.state == DealState.AGREEMENT_SENT


def test_loss_needs_a_reason(deal, rep):
    with pytest.raises(services.TransitionBlocked, match="Choose a loss reason"):
        services.deal_transition(deal=deal, transition="mark_lost", by=rep, reason="meh")
    deal.refresh_from_db()
    assert deal.state == DealState.INTENT_SPOTTED and deal.loss_reason == ""
    with pytest.raises(services.TransitionBlocked, match="not a loss reason"):
        services.deal_transition(deal=deal, transition="mark_lost", by=rep, loss_reason="bored")


def test_won_needs_a_signature_or_a_manager_override(deal, rep, manager):
    walk_to(deal, DealState.AGREEMENT_SENT, rep)
    with pytest.raises(services.TransitionBlocked, match="No completed signature"):
        fire(deal, "mark_won", rep)
    with pytest.raises(services.NotPermitted, match="team's manager"):
        fire(deal, "override_won", rep)
    with pytest.raises(services.TransitionBlocked, match="needs a written reason"):
        services.deal_transition(deal=deal, transition="override_won", by=manager, reason=" ")
    fire(deal, "override_won", manager, reason="Signed on paper")
    deal.refresh_from_db()
    assert deal.state == DealState.CLOSED_WON
    assert deal.won_override_reason == "Signed on paper"
    assert deal.events.filter(transition="override_won", reason="Signed on paper").exists()


def test_a_completed_signature_wins_the_deal_as_the_system(deal, rep):
    walk_to(deal, DealState.AGREEMENT_SENT, rep)
    deal.contract_versions.update(status=ContractVersion.Status.COMPLETED)
    services.deal_transition(deal=deal, transition="mark_won", by=None, as_system=True)
    assert deal.state == DealState.CLOSED_WON
    event = deal.events.get(transition="mark_won")
    assert event.actor is None and event.actor_label == "System"


def test_only_a_manager_reopens_a_lost_deal(deal, rep, manager):
    fire(deal, "mark_lost", rep)
    with pytest.raises(services.NotPermitted):
        fire(deal, "reopen", rep)
    with pytest.raises(services.TransitionBlocked, match="Say why"):
        services.deal_transition(deal=deal, transition="reopen", by=manager, reason="")
    fire(deal, "reopen", manager, reason="New budget approved")
    deal.refresh_from_db()
    assert deal.state == DealState.INTENT_SPOTTED
    assert deal.loss_reason == "" and deal.closed_at is None
    assert deal.events.get(transition="reopen").reason == "New budget approved"


@pytest.mark.parametrize("who", ["teammate", "other_rep", "other_manager"])
def test_others_cannot_move_a_reps_deal(deal, who, request):
    """A rep moves only their own deals; a manager only their own team's."""
    user = request.getfixturevalue(who)
    with pytest.raises(services.NotPermitted):
        fire(deal, "ask", user)
    deal.refresh_from_db()
    assert deal.state == DealState.INTENT_SPOTTED


def test_a_transition_needs_an_actor(deal):
    with pytest.raises(services.NotPermitted):
        services.deal_transition(deal=deal, transition="ask", by=None)


def test_unknown_transition_is_refused(deal, rep):
    with pytest.raises(services.TransitionBlocked, match="not a deal transition"):
        services.deal_transition(deal=deal, transition="delete", by=rep)


def test_a_stale_copy_gets_a_conflict_not_a_lost_update(deal, rep):
    """Two copies of one deal: the second writer gets a clear conflict."""
    first = Deal.objects.get(pk=deal.pk)
    second = Deal.objects.get(pk=deal.pk)
    fire(first, "ask", rep)
    with pytest.raises(services.DealConflict, match="in another tab or window"):
        fire(second, "mark_lost", rep)
    deal.refresh_from_db()
    assert deal.state == DealState.ASKED
    assert deal.events.filter(kind=DealEvent.Kind.TRANSITION).count() == 1


def test_expected_state_detects_a_move_since_the_page_was_loaded(deal, rep):
    with pytest.raises(services.DealConflict):
        services.deal_transition(
            deal=deal, transition="ask", by=rep, expected_state=DealState.NEGOTIATING
        )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_connections_racing_on_one_deal(postgres, team, rep, account):
    """On PostgreSQL two connections fire conflicting moves: one wins, one gets the conflict."""
    deal = services.deal_create(by=rep, account=account, title="Race")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def worker(name, kwargs):
        try:
            copy = Deal.objects.get(pk=deal.pk)
            barrier.wait(timeout=10)
            services.deal_transition(deal=copy, transition=name, by=rep, **kwargs)
            outcomes.append("won")
        except services.DealConflict:
            outcomes.append("conflict")
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=worker, args=("ask", {})),
        threading.Thread(
            target=worker, args=("mark_lost", {"loss_reason": "price", "reason": "x"})
        ),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["conflict", "won"]
    assert DealEvent.objects.filter(deal=deal, kind=DealEvent.Kind.TRANSITION).count() == 1


def test_a_failing_audit_write_leaves_no_state_change(deal, rep, monkeypatch):
    """The transition and its audit event commit together or not at all."""

    def boom(*args, **kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(DealEvent.objects, "create", boom)
    with pytest.raises(RuntimeError):
        fire(deal, "ask", rep)
    monkeypatch.undo()
    assert Deal.objects.get(pk=deal.pk).state == DealState.INTENT_SPOTTED
    assert deal.state == DealState.INTENT_SPOTTED
    assert not deal.events.filter(kind=DealEvent.Kind.TRANSITION).exists()


def test_side_effects_wait_for_commit(deal, rep, django_capture_on_commit_callbacks):
    """Receivers of deal_state_changed run inside the transaction; on_commit work runs after."""
    from deals.signals import deal_state_changed

    seen = []

    def receiver(sender, deal, event, by, **kwargs):
        seen.append(("in-transaction", connection.in_atomic_block))
        from django.db import transaction

        transaction.on_commit(lambda: seen.append(("after-commit", None)))

    deal_state_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            fire(deal, "ask", rep)
            assert seen == [("in-transaction", True)]
        assert len(callbacks) >= 1
        assert ("after-commit", None) in seen
    finally:
        deal_state_changed.disconnect(receiver)


def test_the_audit_log_is_append_only(deal, rep):
    fire(deal, "ask", rep)
    event = deal.events.first()
    event.reason = "rewritten"
    with pytest.raises(Exception, match="append-only"):
        event.save()
    with pytest.raises(Exception, match="append-only"):
        event.delete()
    with pytest.raises(Exception, match="append-only"):
        DealEvent.objects.filter(deal=deal).update(reason="x")
    with pytest.raises(Exception, match="append-only"):
        DealEvent.objects.filter(deal=deal).delete()


def test_winning_hands_the_customer_over(deal, rep, manager):
    fire(deal, "override_won", manager, reason="Signed on paper")
    account = Account.objects.get(pk=deal.account_id)
    assert account.status == Account.Status.CUSTOMER
    assert account.account_manager == manager
    kinds = set(OnboardingStep.objects.filter(deal=deal).values_list("kind", flat=True))
    assert kinds == set(OnboardingStep.Kind.values)
    assert deal.events.filter(kind=DealEvent.Kind.HANDOFF).exists()


def test_transitions_offered_to_a_user(deal, rep, manager):
    names = {t.name for t in services.deal_transitions_for(deal, rep)}
    assert names == {"ask", "send_agreement", "mark_lost"}
    blocked = {t.name: t.blockers for t in services.deal_transitions_for(deal, rep)}
    assert blocked["send_agreement"] and not blocked["mark_lost"]
    assert "override_won" in {t.name for t in services.deal_transitions_for(deal, manager)}
