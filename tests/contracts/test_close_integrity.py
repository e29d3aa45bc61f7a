"""One truth for the close: the deal, its contract versions and the signer never disagree."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from contracts import services
from contracts.consistency import close_disagreements
from contracts.esign.builtin import signing_url
from contracts.models import ContractVersion
from deals import services as deal_services
from deals.models import Concession, Deal, DealEvent, DealState
from followups.models import Reminder, RepTask
from tests.conftest import record_ask

Status = ContractVersion.Status


def _sent(run_on_commit, deal, by) -> ContractVersion:
    version = services.contract_generate(deal=deal, by=by)
    run_on_commit(services.contract_send, version=version, by=by)
    version.refresh_from_db()
    return version


def _lose(deal, by):
    deal_services.deal_transition(
        deal=deal, transition="mark_lost", by=by, loss_reason="competitor", reason="Went elsewhere"
    )


# --- 1. moves that need a record -------------------------------------------------------------


def test_the_admin_offers_no_move_that_needs_a_record(client, admin_user, deal):
    """The admin's actions come from the transition metadata: no “ask” and no “send the
    agreement” (only recording an ask and sending a contract make those)."""
    client.force_login(admin_user)
    html = client.get(reverse("admin:deals_deal_changelist")).content.decode()
    assert "transition_negotiate" in html and "transition_mark_lost" in html
    assert "transition_ask" not in html and "transition_send_agreement" not in html


def test_a_board_drag_to_agreement_sent_is_refused_in_plain_words(client, rep, termed_deal):
    """Dropping a card on “Agreement sent” (an htmx POST) answers 409 with the rule and a
    button to the contract panel; the deal stays and no contract is marked sent."""
    services.contract_generate(deal=termed_deal, by=rep)
    client.force_login(rep)
    response = client.post(
        reverse("deals:deal_transition", args=[termed_deal.pk, "send_agreement"]),
        {"expected_state": "intent_spotted"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 409
    html = response.content.decode()
    assert "cannot be fired on its own" in html and "Send for signature" in html
    assert f"{termed_deal.get_absolute_url()}#contracts-panel" in html
    termed_deal.refresh_from_db()
    assert termed_deal.state == DealState.INTENT_SPOTTED
    assert termed_deal.contract_versions.get().status == Status.DRAFT


def test_sending_a_contract_is_what_moves_the_deal(termed_deal, rep, run_on_commit):
    """contract_send fires send_agreement as its own use case; the audit shows one move."""
    _sent(run_on_commit, termed_deal, rep)
    termed_deal.refresh_from_db()
    assert termed_deal.state == DealState.AGREEMENT_SENT
    assert termed_deal.events.filter(transition="send_agreement").count() == 1
    assert close_disagreements(Deal.objects.filter(pk=termed_deal.pk)) == []


# --- 2. leaving the open states settles the paperwork --------------------------------------------


def test_losing_the_deal_withdraws_the_builtin_link_and_stops_reminders(
    client, termed_deal, rep, run_on_commit
):
    """Lost: the version out is voided in the same transaction, the buyer's link shows that
    the contract was withdrawn and cannot be signed, and the follow-ups stop."""
    version = _sent(run_on_commit, termed_deal, rep)
    assert version.status == Status.SENT
    assert Reminder.objects.filter(deal=termed_deal, status="scheduled").exists()
    url = signing_url(version)
    _lose(termed_deal, rep)
    version.refresh_from_db()
    assert (version.status, version.withdrawal) == (Status.VOIDED, "deal_closed")
    assert not Reminder.objects.filter(deal=termed_deal, status="scheduled").exists()
    page = client.get(url).content.decode()
    assert "This contract was withdrawn" in page
    assert "Sign the contract" not in page
    response = client.post(url.replace("/sign/", "/sign/") + "submit/", {"full_name": "Ann"})
    assert "Sign the contract" not in response.content.decode()
    version.refresh_from_db()
    assert version.status == Status.VOIDED
    assert close_disagreements() == []


def test_archiving_and_override_also_settle_the_paperwork(
    make_deal, termed_deal, rep, manager, signer, run_on_commit
):
    """Archived or won by a manager's override: nothing stays out for signature."""
    version = _sent(run_on_commit, termed_deal, rep)
    deal_services.deal_transition(
        deal=termed_deal, transition="override_won", by=manager, reason="Signed on paper"
    )
    version.refresh_from_db()
    assert version.status == Status.VOIDED
    other = make_deal(title="Second")
    deal_services.stakeholder_add(deal=other, by=rep, contact=signer, role="signer")
    second = _sent(run_on_commit, other, rep)
    deal_services.deal_archive(deal=other, by=rep)
    second.refresh_from_db()
    assert (second.status, second.withdrawal) == (Status.VOIDED, "deal_closed")
    assert close_disagreements() == []


def test_a_lost_deal_voids_its_docusign_envelope_through_the_provider(
    docusign, termed_deal, rep, run_on_commit
):
    """The envelope is voided at DocuSign after commit, with a reason the signer can read."""
    version = _sent(run_on_commit, termed_deal, rep)
    assert version.envelope_id in docusign.envelopes
    run_on_commit(
        deal_services.deal_transition,
        deal=termed_deal,
        transition="mark_lost",
        by=rep,
        loss_reason="price",
        reason="Too dear",
    )
    void = docusign.requests("PUT", version.envelope_id)
    assert void and void[0].json["status"] == "voided"
    assert void[0].json["voidedReason"] == "The seller withdrew this contract."
    assert docusign.envelopes[version.envelope_id].status == "voided"


# --- 3. a late signature is never silent ---------------------------------------------------------


def test_a_signature_after_the_loss_is_recorded_told_and_can_become_a_win(
    client, termed_deal, rep, manager, run_on_commit, settings
):
    """DocuSign completes an envelope voided by the loss: the version is “signed after the
    deal closed”, the deal stays lost, owner and manager get a task and the timeline says so,
    the deal page shows a banner, and a manager turns it into a win in one audited step."""
    settings.ESIGN_PROVIDER = "docusign"
    version = services.contract_generate(deal=termed_deal, by=rep)
    services.contract_send(version=version, by=rep)  # the provider call waits for commit
    services.contract_send_succeeded(version_id=version.pk, envelope_id="env-late-1")
    _lose(termed_deal, rep)
    version.refresh_from_db()
    assert version.status == Status.VOIDED
    applied = services.envelope_event_apply(
        version=version, event="envelope-completed", source="webhook", signed_pdf=b"%PDF-signed"
    )
    assert applied
    version.refresh_from_db()
    termed_deal.refresh_from_db()
    assert (version.status, version.signed_late) == (Status.COMPLETED, True)
    assert termed_deal.state == DealState.CLOSED_LOST
    tasks = RepTask.objects.filter(deal=termed_deal, kind=RepTask.Kind.LATE_SIGNATURE)
    assert {t.owner for t in tasks} == {rep, manager}
    assert termed_deal.events.filter(data__action="signed_late").exists()
    assert close_disagreements() == []

    client.force_login(manager)
    page = client.get(termed_deal.get_absolute_url()).content.decode()
    assert "signed after the deal closed" in page
    url = reverse("contracts:late_signature_accept", args=[termed_deal.pk, version.pk])
    assert url in page
    client.force_login(rep)
    assert client.post(url, {"reason": "x"}).status_code == 403
    api = APIClient()
    api.force_authenticate(rep)
    api_url = f"/api/v1/deals/{termed_deal.pk}/contracts/{version.pk}/accept-late-signature/"
    response = api.post(api_url, {"reason": "x"}, format="json")
    assert response.status_code == 403
    response = api.post(
        f"/api/v1/deals/{termed_deal.pk}/transitions/accept_late_signature/",
        {"reason": "x"},
        format="json",
    )
    assert response.status_code == 403  # managers only, whatever the path
    client.force_login(manager)
    response = client.post(url, {"reason": "The buyer meant it; confirmed by phone"})
    assert response.status_code == 302
    termed_deal.refresh_from_db()
    assert termed_deal.state == DealState.CLOSED_WON
    event = termed_deal.events.get(transition="accept_late_signature")
    assert (event.actor, event.from_state) == (manager, DealState.CLOSED_LOST)
    assert event.reason == "The buyer meant it; confirmed by phone"
    assert close_disagreements() == []


# --- 4. give-get concessions change the terms --------------------------------------------------


def test_accepting_a_concession_changes_terms_withdraws_and_regenerates(
    client, termed_deal, rep, run_on_commit
):
    """Month-to-month for a case study, and 24 → 12 months: the deal's terms change, the
    version out is withdrawn at once (its link says a revised contract is coming), v2 is
    generated from the new terms, and “send the revised contract today” tops My day."""
    v1 = _sent(run_on_commit, termed_deal, rep)
    url = signing_url(v1)
    concession = deal_services.concession_propose(
        deal=termed_deal,
        by=rep,
        give="Monthly billing",
        get="A video case study",
        new_billing="monthly",
        new_term_months=12,
        new_amount="11000",
    )
    deal_services.concession_decide(concession=concession, by=rep, accepted=True)
    termed_deal.refresh_from_db()
    assert (termed_deal.billing, termed_deal.term_months) == ("monthly", 12)
    assert termed_deal.amount == Decimal("11000")
    assert termed_deal.state == DealState.NEGOTIATING  # nothing out: back to negotiating
    v1.refresh_from_db()
    assert (v1.status, v1.withdrawal) == (Status.VOIDED, "revised")
    v2 = termed_deal.contract_versions.get(number=2)
    assert v2.status == Status.DRAFT
    assert (v2.terms["term_months"], v2.terms["billing"]) == ("12", "Monthly")
    assert "A revised contract is coming" in client.get(url).content.decode()
    client.force_login(rep)
    home = client.get(reverse("home")).content.decode()
    assert "Send the revised contract today" in home
    assert home.index("Send the revised contract today") < home.index("Calls and meetings")
    assert close_disagreements() == []
    run_on_commit(services.contract_send, version=v2, by=rep)
    task = RepTask.objects.get(deal=termed_deal, kind=RepTask.Kind.SEND_CONTRACT)
    assert task.completed_at is not None


def test_bad_term_changes_are_refused_and_nothing_is_written(deal, rep):
    before = Concession.objects.count()
    with pytest.raises(deal_services.DealError, match="at most 100%"):
        deal_services.concession_propose(
            deal=deal, by=rep, give="Discount", get="Logo", new_discount_percent="120"
        )
    with pytest.raises(deal_services.DealError, match="single line"):
        deal_services.concession_propose(deal=deal, by=rep, give="A\nB", get="Logo")
    assert Concession.objects.count() == before


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_people_deciding_one_concession_one_wins(postgres, team, rep, manager, account):
    """20 threads, each its own PostgreSQL connection, accept or reject the same concession:
    exactly one decision is stored, the others get a clear conflict, one audit event."""
    deal = deal_services.deal_create(by=rep, account=account, title="Race")
    concession = deal_services.concession_propose(
        deal=deal, by=rep, give="Free onboarding", get="Signed this month"
    )
    barrier = threading.Barrier(20)
    outcomes: list[str] = []
    lock = threading.Lock()

    def decide(i):
        try:
            copy = Concession.objects.get(pk=concession.pk)
            barrier.wait(timeout=20)
            deal_services.concession_decide(
                concession=copy, by=manager if i % 2 else rep, accepted=bool(i % 3)
            )
            result = "won"
        except deal_services.DealConflict as exc:
            assert "already" in exc.message
            result = "conflict"
        finally:
            connections.close_all()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["conflict"] * 19 + ["won"]
    decided = DealEvent.objects.filter(
        deal=deal, kind=DealEvent.Kind.CONCESSION, data__status__in=["accepted", "rejected"]
    )
    assert decided.count() == 1


# --- 5. signed terms are frozen ------------------------------------------------------------------


def test_a_won_deals_terms_are_frozen_on_every_path(rep, manager, admin_user, deal):
    """After the win: the API PATCH of amount is a 409 with the reason, the service refuses,
    and a manager amends with a reason that the audit keeps."""
    deal_services.deal_transition(
        deal=deal, transition="override_won", by=manager, reason="Signed on paper"
    )
    api = APIClient()
    api.force_authenticate(rep)
    response = api.patch(f"/api/v1/deals/{deal.pk}/", {"amount": "1"}, format="json")
    assert response.status_code == 409
    assert "frozen" in response.json()["detail"]
    response = api.patch(f"/api/v1/deals/{deal.pk}/", {"currency": "USD"}, format="json")
    assert response.status_code == 409
    deal.refresh_from_db()
    assert (deal.amount, deal.currency) == (Decimal("12000"), "EUR")
    with pytest.raises(deal_services.NotPermitted):
        deal_services.deal_terms_amend(deal=deal, by=rep, reason="typo", amount="1")
    client = Client()
    client.force_login(admin_user)
    admin_page = client.get(reverse("admin:deals_deal_change", args=[deal.pk])).content.decode()
    assert 'name="amount"' not in admin_page and 'name="next_step"' in admin_page
    deal_services.deal_terms_amend(deal=deal, by=manager, reason="Price typo", amount="11500")
    event = deal.events.filter(kind=DealEvent.Kind.EDITED).first()
    assert event.reason == "Price typo" and event.data["amended"] is True
    assert event.data["changes"]["amount"] == ["12000.00", "11500.00"]


# --- 7. built-in sending can fail visibly --------------------------------------------------------


def test_a_newline_in_an_old_title_fails_the_send_visibly_with_a_retry(
    termed_deal, rep, run_on_commit
):
    """A title saved before newlines were refused breaks the email header: the version is
    “sending failed” with the reason, no follow-ups are planned, and a retry after fixing
    the title sends it."""
    Deal.objects.filter(pk=termed_deal.pk).update(title="Acme\nrollout")
    termed_deal.refresh_from_db()
    version = _sent(run_on_commit, termed_deal, rep)
    assert version.status == Status.FAILED
    assert "could not be built" in version.status_reason
    assert not Reminder.objects.filter(deal=termed_deal).exists()
    assert close_disagreements() == []  # failed, with a retry, counts as outstanding
    deal_services.deal_update(deal=Deal.objects.get(pk=termed_deal.pk), by=rep, title="Acme")
    run_on_commit(services.contract_resend, version=version, by=rep)
    version.refresh_from_db()
    assert version.status == Status.SENT
    assert Reminder.objects.filter(deal=termed_deal, status="scheduled").exists()


def test_titles_and_names_refuse_newlines_everywhere(client, rep, account, deal):
    """API 400, deal page form error, services' clear message: never a half-written row."""
    api = APIClient()
    api.force_authenticate(rep)
    response = api.post(
        "/api/v1/deals/", {"title": "Two\nlines", "account": account.pk}, format="json"
    )
    assert response.status_code == 400
    assert "single line" in str(response.json())
    response = api.patch(f"/api/v1/deals/{deal.pk}/", {"title": "A\r\nB"}, format="json")
    assert response.status_code == 400
    response = api.post(
        "/api/v1/contacts/",
        {"account": account.pk, "first_name": "Ann\n", "last_name": "X\nY"},
        format="json",
    )
    assert response.status_code == 400
    with pytest.raises(deal_services.DealError, match="single line"):
        deal_services.account_create(by=rep, team=rep.team, name="Evil\nCorp")
    client.force_login(rep)
    form_data = {
        "title": "Bad\ntitle",
        "account": account.pk,
        "amount": "1",
        "currency": "EUR",
        "term_months": "12",
        "billing": "annually",
    }
    response = client.post(reverse("deals:deal_edit", args=[deal.pk]), form_data)
    assert response.status_code == 200
    assert response.context["form"].errors["title"] == ["Use a single line here (no line breaks)."]
    deal.refresh_from_db()
    assert deal.title == "Acme rollout"


# --- 11. the invariant check ---------------------------------------------------------------------


def test_check_close_consistency_prints_each_disagreement_and_exits_1(
    termed_deal, rep, capsys, run_on_commit
):
    """Clean data: exit 0. A deal forced into a disagreement: printed, exit status 1."""
    _sent(run_on_commit, termed_deal, rep)
    call_command("check_close_consistency")
    assert "agree" in capsys.readouterr().out
    ContractVersion.objects.filter(deal=termed_deal).update(status=Status.VOIDED)
    with pytest.raises(CommandError) as failure:
        call_command("check_close_consistency")
    assert failure.value.returncode == 1
    out = capsys.readouterr().out
    assert f"deal {termed_deal.pk}" in out and "no contract version is out" in out


def test_asking_from_the_deal_page_still_moves_the_deal(deal, rep):
    """The ask use case fires `ask` itself: numbered, audited, one move."""
    record_ask(deal, rep)
    deal.refresh_from_db()
    assert deal.state == DealState.ASKED
    assert deal.asks.count() == 1
    assert deal.events.filter(transition="ask").count() == 1
