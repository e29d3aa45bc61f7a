"""Deal services beyond the state machine: asks, objections, concessions, readiness, edits."""

from decimal import Decimal

import pytest

from deals import services
from deals.models import Ask, DealEvent, DealState, Objection


def test_a_not_yet_records_the_objection_and_moves_to_negotiating(deal, rep):
    ask = services.deal_ask_record(
        deal=deal,
        by=rep,
        channel="call",
        statement="Shall we start on the 1st?",
        answer=Ask.Answer.NOT_YET,
        objection={"category": "price", "detail": "Too expensive", "is_stall": False},
    )
    assert ask.number == 1
    assert deal.state == DealState.NEGOTIATING
    objection = deal.objections.get()
    assert (objection.category, objection.status, objection.ask) == ("price", "open", ask)
    services.objection_resolve(objection=objection, by=rep, resolution="Quarterly billing")
    second = services.deal_ask_record(
        deal=deal, by=rep, channel="meeting", statement="Ready now?", answer=Ask.Answer.YES
    )
    assert second.number == 2 and second.ordinal == "2nd"
    # A yes while negotiating never moves the deal back to "Asked": the next forward move is
    # sending the agreement.
    assert deal.state == DealState.NEGOTIATING
    assert list(
        deal.events.filter(kind=DealEvent.Kind.TRANSITION)
        .order_by("pk")
        .values_list("to_state", flat=True)
    ) == ["asked", "negotiating"]


@pytest.mark.parametrize(
    ("state_path", "answer", "expected"),
    [
        ([], "yes", "asked"),
        ([], "no", "negotiating"),
        (["ask"], "yes", "asked"),
        (["ask"], "no", "negotiating"),
        (["ask", "negotiate"], "yes", "negotiating"),
        (["ask", "negotiate"], "no", "negotiating"),
    ],
)
def test_an_ask_only_moves_the_deal_forward_as_announced(deal, rep, state_path, answer, expected):
    """The outcome shown beside each answer is what recording it does."""
    from tests.conftest import record_ask

    for name in state_path:
        if name == "ask":
            record_ask(deal, rep)
        else:
            services.deal_transition(deal=deal, transition=name, by=rep)
    announced = services.deal_ask_outcomes(deal)[answer]
    services.deal_ask_record(deal=deal, by=rep, channel="call", statement="Go?", answer=answer)
    deal.refresh_from_db()
    assert deal.state == expected
    assert str(DealState(expected).label) in announced


def test_a_not_yet_without_an_objection_is_refused_and_nothing_is_saved(deal, rep):
    with pytest.raises(services.DealError, match="objection"):
        services.deal_ask_record(
            deal=deal, by=rep, channel="call", statement="Shall we?", answer="not_yet"
        )
    assert not deal.asks.exists()
    deal.refresh_from_db()
    assert deal.state == DealState.INTENT_SPOTTED


def test_a_no_is_not_the_end(deal, rep):
    services.deal_ask_record(deal=deal, by=rep, channel="email", statement="Go?", answer="no")
    assert deal.state == DealState.NEGOTIATING


def test_resolving_twice_is_refused(deal, rep):
    obj = services.objection_raise(deal=deal, by=rep, category="risk", detail="Rollout risk")
    services.objection_resolve(objection=obj, by=rep, resolution="Pilot first")
    with pytest.raises(services.DealError, match="no longer open"):
        services.objection_resolve(objection=obj, by=rep, resolution="again")
    assert Objection.objects.get(pk=obj.pk).resolution == "Pilot first"


def test_concessions_are_give_get_pairs(deal, rep):
    with pytest.raises(services.DealError, match="give-get"):
        services.concession_propose(deal=deal, by=rep, give="10% off", get="")
    c = services.concession_propose(deal=deal, by=rep, give="10% off", get="3-year term")
    services.concession_decide(concession=c, by=rep, accepted=True)
    assert c.status == "accepted"
    with pytest.raises(services.DealError):
        services.concession_decide(concession=c, by=rep, accepted=False)


def test_readiness_score_and_event(deal, rep):
    services.deal_readiness_set(
        deal=deal, by=rep, items={"ready_needs_understood": True, "ready_solution_fits": True}
    )
    deal.refresh_from_db()
    assert deal.readiness_score == 2
    assert deal.events.filter(kind=DealEvent.Kind.READINESS, reason="Readiness 2/6").exists()
    with pytest.raises(services.DealError):
        services.deal_readiness_set(deal=deal, by=rep, items={"ready_vibes": True})


def test_edits_are_logged_and_bad_amounts_refused(deal, rep):
    services.deal_update(deal=deal, by=rep, amount=Decimal("15000.50"), next_step="Call CFO")
    event = deal.events.get(kind=DealEvent.Kind.EDITED)
    assert event.data["changes"]["amount"] == ["12000.00", "15000.50"]
    with pytest.raises(services.DealError, match="negative"):
        services.deal_update(deal=deal, by=rep, amount=Decimal("-1"))
    with pytest.raises(services.DealError, match="cannot be edited"):
        services.deal_update(deal=deal, by=rep, owner_id=1)


def test_other_reps_cannot_write_to_a_deal(deal, teammate, other_rep):
    for user in (teammate, other_rep):
        with pytest.raises(services.NotPermitted):
            services.buying_signal_record(
                deal=deal, by=user, kind="explicit", note="x", channel="call"
            )
    assert not deal.signals.exists()


def test_stakeholders_come_from_the_deal_account(deal, rep, contact, other_rep):
    services.stakeholder_add(deal=deal, by=rep, contact=contact, role="signer")
    with pytest.raises(services.DealError, match="already"):
        services.stakeholder_add(deal=deal, by=rep, contact=contact, role="signer")
    assert deal.stakeholders.count() == 1


def test_follow_on_deals_start_from_a_won_deal(deal, rep, manager):
    with pytest.raises(services.DealError, match="won deal"):
        services.deal_follow_on_create(parent=deal, by=rep, title="Upsell", need="More seats")
    services.deal_transition(deal=deal, transition="override_won", by=manager, reason="Paper")
    child = services.deal_follow_on_create(parent=deal, by=rep, title="Upsell", need="More seats")
    assert child.parent_deal == deal and child.state == DealState.INTENT_SPOTTED
    assert child.identified_pain == "More seats"


def test_visibility_rules(deal, rep, teammate, manager, other_rep, other_manager, admin_user, team):
    from deals.models import Deal

    assert Deal.objects.visible_to(teammate).filter(pk=deal.pk).exists()
    team.reps_see_team_deals = False
    team.save()
    teammate.refresh_from_db()
    assert not Deal.objects.visible_to(teammate).filter(pk=deal.pk).exists()
    assert Deal.objects.visible_to(manager).filter(pk=deal.pk).exists()
    assert not Deal.objects.visible_to(other_rep).filter(pk=deal.pk).exists()
    assert not Deal.objects.visible_to(other_manager).filter(pk=deal.pk).exists()
    assert Deal.objects.visible_to(admin_user).filter(pk=deal.pk).exists()
