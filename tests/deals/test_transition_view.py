"""The transition endpoint shared by the deal page and the pipeline board."""

from decimal import Decimal
from html import unescape

import pytest
from django.urls import reverse

from deals import services
from deals.models import DealEvent, DealState
from tests.conftest import record_ask


def url(deal, name):
    return reverse("deals:deal_transition", args=[deal.pk, name])


@pytest.fixture
def rep_client(client, rep):
    client.force_login(rep)
    return client


def test_an_allowed_move_fires_and_redirects_to_the_deal(rep_client, deal):
    """The owner moves an asked deal to negotiating: it moves and the timeline records it."""
    record_ask(deal, deal.owner)
    response = rep_client.post(url(deal, "negotiate"), {"expected_state": "asked"})
    assert response.status_code == 302
    assert response["Location"] == deal.get_absolute_url()
    deal.refresh_from_db()
    assert deal.state == DealState.NEGOTIATING
    assert deal.events.filter(kind=DealEvent.Kind.TRANSITION, transition="negotiate").exists()


def test_htmx_success_answers_with_an_hx_redirect(rep_client, deal):
    """htmx callers (the board) get HX-Redirect, honouring a safe `next`."""
    record_ask(deal, deal.owner)
    response = rep_client.post(
        url(deal, "negotiate"),
        {"expected_state": "asked", "next": "/board/"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/board/"


def test_an_unsafe_next_is_ignored(rep_client, deal):
    """A `next` pointing to another site is never followed."""
    record_ask(deal, deal.owner)
    response = rep_client.post(
        url(deal, "negotiate"), {"expected_state": "asked", "next": "https://evil.example/"}
    )
    assert response["Location"] == deal.get_absolute_url()


def test_a_stale_expected_state_is_a_conflict_and_changes_nothing(rep_client, deal, rep):
    """A user who saw an older state gets 409 with a plain message; no event is written."""
    record_ask(deal, rep)
    before = deal.events.count()
    response = rep_client.post(url(deal, "negotiate"), {"expected_state": "intent_spotted"})
    assert response.status_code == 409
    assert "in another tab or window" in unescape(response.content.decode())
    deal.refresh_from_db()
    assert deal.state == DealState.ASKED
    assert deal.events.count() == before


def test_a_move_the_machine_forbids_is_refused_with_the_reason(rep_client, deal):
    """Sending the agreement from the move endpoint: 409, the rule in plain words and a link
    to the step that sends a contract (the only way the deal reaches “Agreement sent”)."""
    response = rep_client.post(url(deal, "send_agreement"), {"expected_state": "intent_spotted"})
    assert response.status_code == 409
    html = unescape(response.content.decode())
    assert "“Send the agreement” cannot be fired on its own" in html
    assert f'href="{deal.get_absolute_url()}#contracts-panel"' in html
    deal.refresh_from_db()
    assert deal.state == DealState.INTENT_SPOTTED


def test_a_move_from_the_wrong_state_is_refused(rep_client, deal):
    """Reopening an open deal is not a move the machine has from intent spotted."""
    response = rep_client.post(url(deal, "follow_up"), {"expected_state": "intent_spotted"})
    assert response.status_code == 409
    assert "cannot do" in unescape(response.content.decode())


def test_a_rep_cannot_override_to_won(rep_client, deal):
    """Overrides are for managers: 403 with the reason, nothing saved."""
    response = rep_client.post(
        url(deal, "override_won"), {"expected_state": "intent_spotted", "reason": "Trust me"}
    )
    assert response.status_code == 403
    assert "Only the team's manager" in unescape(response.content.decode())
    deal.refresh_from_db()
    assert deal.state == DealState.INTENT_SPOTTED and deal.won_override_reason == ""


def test_a_teammate_who_may_read_gets_403_when_moving(client, teammate, deal):
    """A teammate sees the deal (team allows it) but cannot move it."""
    client.force_login(teammate)
    assert client.get(deal.get_absolute_url()).status_code == 200
    response = client.post(
        url(deal, "mark_lost"),
        {"expected_state": "intent_spotted", "loss_reason": "price", "reason": "x"},
    )
    assert response.status_code == 403
    assert "Only the deal's owner" in unescape(response.content.decode())


def test_another_team_gets_404(client, other_rep, deal):
    """Nobody reaches another team's deal by guessing its URL."""
    client.force_login(other_rep)
    assert client.get(url(deal, "mark_lost")).status_code == 404
    assert client.post(url(deal, "ask"), {"expected_state": "intent_spotted"}).status_code == 404


def test_an_unknown_move_or_deal_is_404(rep_client, deal):
    assert rep_client.get(url(deal, "explode")).status_code == 404
    assert rep_client.get(reverse("deals:deal_transition", args=[999999, "ask"])).status_code == 404


def test_anonymous_users_are_sent_to_login(client, deal):
    response = client.get(url(deal, "mark_lost"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_mark_lost_get_returns_the_form_full_page_or_partial(rep_client, deal):
    """Without htmx the form is a full page; with htmx only the partial."""
    full = rep_client.get(url(deal, "mark_lost"))
    assert full.status_code == 200
    body = full.content.decode()
    assert "<html" in body and 'name="loss_reason"' in body
    assert 'name="expected_state" value="intent_spotted"' in body
    assert "Thank" in body
    partial = rep_client.get(url(deal, "mark_lost"), HTTP_HX_REQUEST="true")
    assert partial.status_code == 200
    assert "<html" not in partial.content.decode()
    assert 'name="loss_reason"' in partial.content.decode()


def test_get_of_a_blocked_move_explains_it(rep_client, deal):
    """The board opening a move the machine forbids gets the reason, not a form."""
    response = rep_client.get(url(deal, "mark_won"), HTTP_HX_REQUEST="true")
    assert response.status_code == 409
    assert "cannot do" in unescape(response.content.decode())


def test_mark_lost_without_a_reason_is_a_bad_form_and_saves_nothing(rep_client, deal):
    response = rep_client.post(url(deal, "mark_lost"), {"expected_state": "intent_spotted"})
    assert response.status_code == 400
    assert "Choose a loss reason" in unescape(response.content.decode())
    deal.refresh_from_db()
    assert deal.state == DealState.INTENT_SPOTTED
    assert not deal.events.filter(kind=DealEvent.Kind.TRANSITION).exists()


def test_an_invalid_loss_reason_is_refused(rep_client, deal):
    response = rep_client.post(
        url(deal, "mark_lost"), {"expected_state": "intent_spotted", "loss_reason": "bored"}
    )
    assert response.status_code == 400
    deal.refresh_from_db()
    assert deal.state == DealState.INTENT_SPOTTED


def test_closing_lost_thanks_the_buyer_and_goes_to_the_next_likeliest_deal(
    rep_client, deal, make_deal
):
    """Lost with a reason: courteous message, then the rep's best open deal, explained."""
    weak = make_deal(title="Weak deal")
    strong = make_deal(title="Strong deal", ready_needs_understood=True, ready_solution_fits=True)
    response = rep_client.post(
        url(deal, "mark_lost"),
        {"expected_state": "intent_spotted", "loss_reason": "price", "reason": "Budget cut"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == f"{strong.get_absolute_url()}?after_lost={deal.pk}"
    body = unescape(response.content.decode())
    assert "closed as lost (Price)" in body
    assert "Thank" in body
    assert "Ranked by readiness score first" in body
    assert weak.title not in body.split("after-lost")[1][:600]
    deal.refresh_from_db()
    assert (deal.state, deal.loss_reason, deal.loss_note) == ("closed_lost", "price", "Budget cut")


def test_closing_the_last_open_deal_lands_on_my_day(rep_client, deal):
    response = rep_client.post(
        url(deal, "mark_lost"), {"expected_state": "intent_spotted", "loss_reason": "timing"}
    )
    assert response["Location"] == reverse("home")


def test_manager_overrides_to_won_with_a_reason(client, manager, deal):
    """The override needs a written reason; with one, the deal is won and handed off."""
    client.force_login(manager)
    missing = client.post(url(deal, "override_won"), {"expected_state": "intent_spotted"})
    assert missing.status_code == 400
    assert "Write the reason" in unescape(missing.content.decode())
    response = client.post(
        url(deal, "override_won"),
        {"expected_state": "intent_spotted", "reason": "Signed on paper at the fair"},
    )
    assert response.status_code == 302
    deal.refresh_from_db()
    assert deal.state == DealState.CLOSED_WON
    assert deal.won_override_reason == "Signed on paper at the fair"
    assert deal.onboarding_steps.count() == 4


def test_manager_reopens_a_lost_deal_with_a_reason(client, manager, rep, deal):
    services.deal_transition(deal=deal, transition="mark_lost", by=rep, loss_reason="price")
    client.force_login(manager)
    assert client.get(url(deal, "reopen")).status_code == 200
    response = client.post(
        url(deal, "reopen"), {"expected_state": "closed_lost", "reason": "Budget is back"}
    )
    assert response.status_code == 302
    deal.refresh_from_db()
    assert deal.state == DealState.INTENT_SPOTTED
    assert deal.events.filter(transition="reopen", reason="Budget is back").exists()


def test_amounts_are_untouched_by_a_failed_move(rep_client, deal):
    """A refused move leaves every field as it was."""
    rep_client.post(url(deal, "send_agreement"), {"expected_state": "intent_spotted"})
    deal.refresh_from_db()
    assert deal.amount == Decimal("12000")


def test_the_courteous_ending_thanks_the_decision_maker_first(rep_client, rep, deal, account):
    """Of the buying group, the decision maker is the one to thank (not the champion)."""
    champion = services.contact_create(by=rep, account=account, first_name="Carl", last_name="C")
    boss = services.contact_create(by=rep, account=account, first_name="Dora", last_name="D")
    services.stakeholder_add(deal=deal, by=rep, contact=champion, role="champion")
    services.stakeholder_add(deal=deal, by=rep, contact=boss, role="decision_maker")
    body = unescape(rep_client.get(url(deal, "mark_lost")).content.decode())
    assert "Thank Dora before you close it" in body
    response = rep_client.post(
        url(deal, "mark_lost"),
        {"expected_state": "intent_spotted", "loss_reason": "fit"},
        follow=True,
    )
    assert "Thank Dora D for their time" in unescape(response.content.decode())


def test_the_move_forms_speak_german():
    """The loss and reason fields of a move say their labels, help and errors in German."""
    from django.utils import translation

    from deals.forms import TransitionForm

    with translation.override("de"):
        lost = TransitionForm({"expected_state": "asked"}, transition="mark_lost")
        assert not lost.is_valid()
        assert lost.errors["loss_reason"] == [
            "Wählen Sie einen Verlustgrund, bevor Sie den Deal als verloren abschließen."
        ]
        assert str(lost.fields["reason"].label) == "Notiz für die Akte"
        assert "ein, zwei Sätzen" in str(lost.fields["reason"].help_text)
        reopen = TransitionForm({"expected_state": "closed_lost"}, transition="reopen")
        assert not reopen.is_valid()
        assert str(reopen.fields["reason"].label) == "Warum wird der Deal wieder geöffnet?"
        assert reopen.errors["reason"] == [
            "Geben Sie den Grund an: Er wird in der Historie des Deals festgehalten."
        ]
