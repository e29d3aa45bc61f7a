"""The deal page: what it shows, who may change what, and every panel form."""

import re
from decimal import Decimal
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from deals import services
from deals.models import (
    Ask,
    BuyingSignal,
    Concession,
    Contact,
    DealEvent,
    DealState,
    Objection,
    Stakeholder,
)
from deals.selectors import deal_next_best_action

HTMX = {"HTTP_HX_REQUEST": "true"}


def text(response) -> str:
    return unescape(response.content.decode())


def panel_url(deal, name, *args):
    return reverse(f"deals:{name}", args=[deal.pk, *args])


@pytest.fixture
def rep_client(client, rep):
    client.force_login(rep)
    return client


# --- the page ------------------------------------------------------------------


def test_the_page_shows_header_next_best_action_moves_and_timeline(rep_client, deal):
    """Header facts, the next best action, the moves this user may make, the timeline."""
    body = text(rep_client.get(deal.get_absolute_url()))
    assert "Acme rollout" in body and "Intent spotted" in body
    assert "12,000 EUR" in body
    assert "Next best action" in body and "Readiness 0/6" in body
    assert "Ask for the sale" in body and "Close as lost" in body
    assert "Override to won" not in body  # managers only: not offered to a rep
    assert "Generate a contract first" in body  # a blocked move says why
    assert "Deal created" in body  # the timeline


def test_a_manager_is_offered_the_override(client, manager, deal):
    client.force_login(manager)
    assert "Override to won" in text(client.get(deal.get_absolute_url()))


def test_a_teammate_reads_the_page_without_forms(client, teammate, deal):
    """A teammate may read (team setting) but gets no write forms."""
    client.force_login(teammate)
    body = text(client.get(deal.get_absolute_url()))
    assert "Read-only" in body
    assert panel_url(deal, "deal_signal_add") not in body
    assert panel_url(deal, "deal_ask_record") not in body


def test_a_teammate_posting_anyway_gets_403_and_nothing_is_saved(client, teammate, deal):
    client.force_login(teammate)
    response = client.post(
        panel_url(deal, "deal_signal_add"), {"kind": "explicit", "channel": "call", "note": "Hi"}
    )
    assert response.status_code == 403
    assert "Only the deal's owner" in text(response)
    assert not BuyingSignal.objects.exists()


def test_other_teams_and_unknown_deals_are_404(client, other_rep, deal):
    client.force_login(other_rep)
    assert client.get(deal.get_absolute_url()).status_code == 404
    assert client.post(panel_url(deal, "deal_note_add"), {"text": "x"}).status_code == 404
    assert client.get(reverse("deals:deal_detail", args=[99999])).status_code == 404


def test_anonymous_users_must_log_in(client, deal):
    response = client.get(deal.get_absolute_url())
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_won_deal_shows_the_customer_handoff(client, manager, deal):
    """Won by override: account manager, onboarding checklist and the follow-on form."""
    services.deal_transition(deal=deal, transition="override_won", by=manager, reason="Paper")
    client.force_login(manager)
    body = text(client.get(deal.get_absolute_url()))
    assert "Customer handoff" in body
    assert "Account manager: <strong>Mona</strong>" in body
    assert "Kickoff meeting" in body and "Open follow-on deal" in body


def test_the_state_machine_page_lists_every_state_and_move(rep_client):
    body = text(rep_client.get(reverse("deals:state_machine")))
    for label in ("Intent spotted", "Negotiating", "Closed / lost"):
        assert label in body
    assert "Override to won" in body and "managers only" in body
    assert "stateDiagram-v2" in body


# --- query counts --------------------------------------------------------------


def _grow(deal, rep, contact, n):
    for i in range(n):
        services.buying_signal_record(
            deal=deal, by=rep, kind="pricing", note=f"Signal {i}", channel="call"
        )
        services.deal_note_add(deal=deal, by=rep, text=f"Note {i}")
        services.objection_raise(deal=deal, by=rep, category="price", detail=f"Obj {i}")
        services.concession_propose(deal=deal, by=rep, give=f"G{i}", get=f"R{i}")
    services.stakeholder_add(deal=deal, by=rep, contact=contact, role="signer")
    for i in range(n // 5):
        Ask.objects.create(
            deal=deal, number=i + 1, channel="call", statement="s", answer="no", asked_by=rep
        )


@pytest.mark.parametrize("size", [5, 50])
def test_the_page_query_count_does_not_grow_with_the_data(
    rep_client, deal, rep, contact, size, django_assert_max_num_queries
):
    """5 or 50 signals, notes, objections, concessions and asks: the same query budget."""
    _grow(deal, rep, contact, size)
    with django_assert_max_num_queries(25):
        response = rep_client.get(deal.get_absolute_url())
    assert response.status_code == 200
    assert f"Signal {size - 1}" in text(response)


def test_the_page_runs_exactly_the_same_queries_for_5_and_50_items(
    rep_client, rep, contact, make_deal
):
    """Ten times the signals, notes, objections, concessions and asks: not one more query."""
    counts = []
    for size in (5, 50):
        target = make_deal(title=f"Deal with {size}")
        _grow(target, rep, contact, size)
        rep_client.get(target.get_absolute_url())  # warm the session and user lookups
        with CaptureQueriesContext(connection) as queries:
            assert rep_client.get(target.get_absolute_url()).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


# --- the next best action --------------------------------------------------------


def test_next_best_action_at_readiness_five_suggests_the_summary_close(deal):
    for field in ("ready_needs_understood", "ready_solution_fits", "ready_value_established"):
        setattr(deal, field, True)
    deal.ready_signer_known = deal.ready_budget_timing = True
    action = deal_next_best_action(deal)
    assert action.headline == "Readiness 5/6: ask for the sale"
    assert action.technique_label == "Summary close"


def test_next_best_action_puts_an_open_objection_first(deal, rep):
    services.deal_ask_record(
        deal=deal,
        by=rep,
        channel="call",
        statement="Shall we?",
        answer="not_yet",
        objection={"category": "price", "detail": "Too pricey"},
    )
    action = deal_next_best_action(deal)
    assert "Resolve the price objection" in action.headline
    assert action.technique == "objection"


def test_after_a_no_the_next_best_action_looks_for_the_concern(deal, rep):
    services.deal_ask_record(deal=deal, by=rep, channel="call", statement="Go?", answer="no")
    action = deal_next_best_action(deal)
    assert action.headline == "The 1st ask was a “no”: find the concern behind it."


def test_next_best_action_uses_the_chosen_technique(deal, rep):
    services.deal_technique_choose(deal=deal, by=rep, technique="option")
    assert deal_next_best_action(deal).technique_label == "Option close"


# --- panels: success with and without htmx, bad input ------------------------------


def test_logging_a_signal_without_htmx_redirects_back(rep_client, deal):
    response = rep_client.post(
        panel_url(deal, "deal_signal_add"),
        {"kind": "explicit", "channel": "call", "note": "How fast can we start?"},
    )
    assert response.status_code == 302
    assert response["Location"].startswith(deal.get_absolute_url())
    assert deal.signals.get().note == "How fast can we start?"


def test_logging_a_signal_with_htmx_returns_the_panel_and_updates(rep_client, deal):
    """htmx gets the panel plus out-of-band header, next best action and timeline."""
    response = rep_client.post(
        panel_url(deal, "deal_signal_add"),
        {"kind": "pricing", "channel": "email", "note": "What about quarterly billing?"},
        **HTMX,
    )
    assert response.status_code == 200
    body = text(response)
    assert "<html" not in body
    assert 'id="panel-signals"' in body and "What about quarterly billing?" in body
    assert re.search(r'id="deal-timeline"[^>]*hx-swap-oob="true"', body)
    assert re.search(r'id="deal-header"[^>]*hx-swap-oob="true"', body)


def test_a_signal_without_words_is_refused(rep_client, deal):
    for extra in ({}, HTMX):
        response = rep_client.post(
            panel_url(deal, "deal_signal_add"), {"kind": "explicit", "channel": "call"}, **extra
        )
        assert response.status_code == 400
        assert "Write down what the buyer said or did." in text(response)
    assert not deal.signals.exists()


def test_a_signal_of_an_unknown_kind_is_refused(rep_client, deal):
    response = rep_client.post(
        panel_url(deal, "deal_signal_add"), {"kind": "vibes", "channel": "call", "note": "x"}
    )
    assert response.status_code == 400
    assert not deal.signals.exists()


def test_ticking_readiness_updates_the_score(rep_client, deal):
    response = rep_client.post(
        panel_url(deal, "deal_readiness_set"),
        {"ready_needs_understood": "on", "ready_solution_fits": "on"},
        **HTMX,
    )
    assert response.status_code == 200
    assert "2/6" in text(response)
    deal.refresh_from_db()
    assert deal.readiness_score == 2
    # Unticking one (it is absent from the POST) lowers the score again.
    rep_client.post(panel_url(deal, "deal_readiness_set"), {"ready_needs_understood": "on"})
    deal.refresh_from_db()
    assert deal.readiness_score == 1


def test_choosing_a_technique_shows_its_guide(rep_client, deal):
    response = rep_client.post(
        panel_url(deal, "deal_technique_choose"), {"technique": "summary"}, **HTMX
    )
    assert "Recap the value you have agreed on" in text(response)
    deal.refresh_from_db()
    assert deal.closing_technique == "summary"


def test_an_unknown_technique_is_refused(rep_client, deal):
    response = rep_client.post(panel_url(deal, "deal_technique_choose"), {"technique": "jedi"})
    assert response.status_code == 400
    deal.refresh_from_db()
    assert deal.closing_technique == ""


def test_an_ask_answered_not_yet_records_the_objection(rep_client, deal):
    """A “not yet” with its objection: ask #1, objection open, deal negotiating."""
    response = rep_client.post(
        panel_url(deal, "deal_ask_record"),
        {
            "channel": "call",
            "statement": "Shall we start on the 1st?",
            "answer": "not_yet",
            "objection_category": "price",
            "objection_detail": "Over budget this quarter",
            "expected_state": "intent_spotted",
        },
        **HTMX,
    )
    assert response.status_code == 200
    body = text(response)
    assert "1st ask" in body and "Over budget this quarter" in body
    deal.refresh_from_db()
    assert deal.state == DealState.NEGOTIATING
    assert deal.objections.get().ask.number == 1


def test_a_not_yet_without_the_objection_is_refused_and_nothing_saved(rep_client, deal):
    response = rep_client.post(
        panel_url(deal, "deal_ask_record"),
        {"channel": "call", "statement": "Shall we?", "answer": "not_yet"},
    )
    assert response.status_code == 400
    assert "A “not yet” comes with an objection" in text(response)
    deal.refresh_from_db()
    assert deal.state == DealState.INTENT_SPOTTED and not deal.asks.exists()


def test_an_ask_without_an_answer_is_refused(rep_client, deal):
    response = rep_client.post(
        panel_url(deal, "deal_ask_record"), {"channel": "call", "statement": "Shall we?"}, **HTMX
    )
    assert response.status_code == 400
    assert "Record the buyer's answer" in text(response)
    assert not deal.asks.exists()


def test_an_ask_from_a_stale_page_is_a_conflict(rep_client, deal, rep):
    """The deal moved to negotiating meanwhile and the page still showed intent spotted."""
    from tests.conftest import record_ask

    record_ask(deal, rep)
    services.deal_transition(deal=deal, transition="negotiate", by=rep)
    response = rep_client.post(
        panel_url(deal, "deal_ask_record"),
        {
            "channel": "call",
            "statement": "Again?",
            "answer": "yes",
            "expected_state": "intent_spotted",
        },
    )
    assert response.status_code == 409
    assert "in another tab or window" in text(response)
    assert deal.asks.count() == 1  # only the first ask, made before the page went stale


def test_resolving_an_objection(rep_client, deal, rep):
    objection = services.objection_raise(deal=deal, by=rep, category="terms", detail="Annual")
    url = panel_url(deal, "deal_objection_resolve", objection.pk)
    bad = rep_client.post(url, {"outcome": "resolved", "resolution": ""}, **HTMX)
    assert bad.status_code == 400
    assert "Say how the objection was resolved." in text(bad)
    objection.refresh_from_db()
    assert objection.status == Objection.Status.OPEN
    ok = rep_client.post(url, {"outcome": "resolved", "resolution": "Quarterly billing"})
    assert ok.status_code == 302
    objection.refresh_from_db()
    assert (objection.status, objection.resolution) == ("resolved", "Quarterly billing")
    again = rep_client.post(url, {"outcome": "resolved", "resolution": "Twice"})
    assert again.status_code == 409  # a stale second decision is a conflict
    assert "no longer open" in text(again)


def test_an_objection_can_end_as_an_accepted_loss(rep_client, deal, rep):
    objection = services.objection_raise(deal=deal, by=rep, category="need", detail="No need")
    rep_client.post(
        panel_url(deal, "deal_objection_resolve", objection.pk),
        {"outcome": "accepted_loss", "resolution": "We cannot build that"},
    )
    objection.refresh_from_db()
    assert objection.status == Objection.Status.ACCEPTED_LOSS


def test_raising_an_objection_as_a_stall(rep_client, deal):
    rep_client.post(
        panel_url(deal, "deal_objection_add"),
        {"category": "timeline", "detail": "Let me think about it", "is_stall": "on"},
    )
    assert deal.objections.get().is_stall
    bad = rep_client.post(panel_url(deal, "deal_objection_add"), {"category": "timeline"})
    assert bad.status_code == 400
    assert deal.objections.count() == 1


def test_a_concession_is_a_give_get_pair(rep_client, deal):
    bad = rep_client.post(panel_url(deal, "deal_concession_add"), {"give": "Discount"}, **HTMX)
    assert bad.status_code == 400
    assert not Concession.objects.exists()
    rep_client.post(
        panel_url(deal, "deal_concession_add"), {"give": "Monthly terms", "get": "Setup fee"}
    )
    concession = deal.concessions.get()
    url = panel_url(deal, "deal_concession_decide", concession.pk)
    assert rep_client.post(url, {"decision": "maybe"}).status_code == 400
    rep_client.post(url, {"decision": "accept"}, **HTMX)
    concession.refresh_from_db()
    assert concession.status == Concession.Status.ACCEPTED
    twice = rep_client.post(url, {"decision": "reject"})
    assert twice.status_code == 409 and "already accepted" in text(twice)


def test_adding_and_removing_a_stakeholder(rep_client, deal, contact):
    rep_client.post(
        panel_url(deal, "deal_stakeholder_add"), {"contact": contact.pk, "role": "signer"}
    )
    stakeholder = deal.stakeholders.get()
    assert stakeholder.role == Stakeholder.Role.SIGNER
    duplicate = rep_client.post(
        panel_url(deal, "deal_stakeholder_add"), {"contact": contact.pk, "role": "signer"}
    )
    assert duplicate.status_code == 400 and "already the signer" in text(duplicate)
    rep_client.post(panel_url(deal, "deal_stakeholder_remove", stakeholder.pk), **HTMX)
    assert not deal.stakeholders.exists()


def test_adding_a_new_contact_inline(rep_client, deal):
    rep_client.post(
        panel_url(deal, "deal_stakeholder_add"),
        {"first_name": "Cleo", "last_name": "Finance", "role": "economic_buyer"},
    )
    stakeholder = deal.stakeholders.select_related("contact").get()
    assert stakeholder.contact.full_name == "Cleo Finance"
    assert stakeholder.contact.account_id == deal.account_id


def test_a_stakeholder_needs_a_contact_and_one_of_this_account(
    rep_client, deal, rep, other_team, other_rep
):
    nobody = rep_client.post(panel_url(deal, "deal_stakeholder_add"), {"role": "signer"})
    assert nobody.status_code == 400
    assert "Pick a contact of the account, or name a new one." in text(nobody)
    foreign_account = services.account_create(by=other_rep, team=other_team, name="Globex")
    stranger = Contact.objects.create(account=foreign_account, first_name="X", last_name="Y")
    response = rep_client.post(
        panel_url(deal, "deal_stakeholder_add"), {"contact": stranger.pk, "role": "signer"}
    )
    assert response.status_code == 400
    assert not Stakeholder.objects.exists()


def test_editing_the_next_step(rep_client, deal):
    response = rep_client.post(
        panel_url(deal, "deal_next_step_update"),
        {"next_step": "Call the CFO", "next_step_due": "2030-01-15"},
        **HTMX,
    )
    assert response.status_code == 200 and "Call the CFO" in text(response)
    deal.refresh_from_db()
    assert deal.next_step == "Call the CFO" and str(deal.next_step_due) == "2030-01-15"
    assert deal.events.filter(kind=DealEvent.Kind.EDITED).exists()


def test_a_bad_next_step_date_is_refused(rep_client, deal):
    response = rep_client.post(
        panel_url(deal, "deal_next_step_update"),
        {"next_step": "Call", "next_step_due": "someday"},
    )
    assert response.status_code == 400
    assert "Enter a valid date." in text(response)
    deal.refresh_from_db()
    assert deal.next_step == ""


def test_notes_go_on_the_timeline(rep_client, deal):
    assert rep_client.post(panel_url(deal, "deal_note_add"), {"text": ""}).status_code == 400
    response = rep_client.post(panel_url(deal, "deal_note_add"), {"text": "Met at fair"}, **HTMX)
    assert "Met at fair" in text(response)
    assert deal.events.filter(kind=DealEvent.Kind.NOTE, reason="Met at fair").exists()


def test_onboarding_steps_and_follow_on_deals_after_a_win(client, manager, rep, deal):
    services.deal_transition(deal=deal, transition="override_won", by=manager, reason="Paper")
    client.force_login(rep)
    step = deal.onboarding_steps.first()
    client.post(panel_url(deal, "deal_onboarding_complete", step.pk), **HTMX)
    step.refresh_from_db()
    assert step.done_at is not None and step.done_by == rep
    bad = client.post(panel_url(deal, "deal_follow_on_create"), {"title": "", "need": ""})
    assert bad.status_code == 400
    assert not deal.follow_on_deals.exists()
    client.post(
        panel_url(deal, "deal_follow_on_create"),
        {"title": "Acme EU rollout", "need": "The EU team wants it too", "amount": "5000"},
    )
    follow_on = deal.follow_on_deals.get()
    assert (follow_on.amount, follow_on.state) == (Decimal("5000.00"), "intent_spotted")


def test_a_follow_on_from_an_open_deal_is_refused(rep_client, deal):
    response = rep_client.post(
        panel_url(deal, "deal_follow_on_create"), {"title": "T", "need": "N", "amount": "1"}
    )
    assert response.status_code == 400
    assert "Follow-on deals start from a won deal." in text(response)


def test_panels_only_accept_post(rep_client, deal):
    assert rep_client.get(panel_url(deal, "deal_note_add")).status_code == 405


def test_a_refused_readiness_tick_says_why_in_the_htmx_answer(client, teammate, deal):
    """The readiness form swaps nothing itself, so the refusal comes in the score box."""
    client.force_login(teammate)
    response = client.post(
        panel_url(deal, "deal_readiness_set"), {"ready_solution_fits": "on"}, **HTMX
    )
    assert response.status_code == 403
    assert re.search(r'id="readiness-meter"[^>]*hx-swap-oob="true"', text(response))
    assert "Only the deal's owner" in text(response)
    deal.refresh_from_db()
    assert deal.readiness_score == 0


PANEL_POSTS = [
    ("deal_signal_add", {"kind": "explicit", "channel": "call", "note": "When can we start?"}),
    ("deal_readiness_set", {"ready_needs_understood": "on"}),
    ("deal_technique_choose", {"technique": "soft"}),
    (
        "deal_ask_record",
        {"channel": "email", "statement": "Shall we?", "answer": "yes"},
    ),
    ("deal_objection_add", {"category": "risk", "detail": "What if it fails?"}),
    ("deal_concession_add", {"give": "Pilot price", "get": "Case study"}),
    ("deal_stakeholder_add", {"first_name": "Nia", "last_name": "Signer", "role": "signer"}),
    ("deal_next_step_update", {"next_step": "Send recap", "next_step_due": "2030-02-01"}),
    ("deal_note_add", {"text": "Good call"}),
]


@pytest.mark.parametrize(("name", "data"), PANEL_POSTS, ids=[p[0] for p in PANEL_POSTS])
def test_every_panel_answers_htmx_with_a_partial_and_plain_posts_with_a_redirect(
    client, rep, account, name, data
):
    """The same URL serves htmx (panel + out-of-band parts) and the no-JavaScript fallback."""
    client.force_login(rep)
    first = services.deal_create(by=rep, account=account, title="First")
    second = services.deal_create(by=rep, account=account, title="Second")
    partial = client.post(panel_url(first, name), data, **HTMX)
    assert partial.status_code == 200
    assert "<html" not in text(partial) and 'hx-swap-oob="true"' in text(partial)
    plain = client.post(panel_url(second, name), data)
    assert plain.status_code == 302
    assert plain["Location"].startswith(second.get_absolute_url())
    first_events = first.events.exclude(kind=DealEvent.Kind.CREATED).count()
    second_events = second.events.exclude(kind=DealEvent.Kind.CREATED).count()
    assert first_events == second_events > 0


def test_the_owner_sees_an_edit_link_and_a_teammate_does_not(client, deal, rep, teammate):
    """The deal page links to the edit form only for users who may change the deal."""
    from django.urls import reverse

    edit_url = reverse("deals:deal_edit", args=[deal.pk])
    client.force_login(rep)
    assert edit_url in client.get(deal.get_absolute_url()).content.decode()
    client.force_login(teammate)
    page = client.get(deal.get_absolute_url())
    assert page.status_code == 200 and edit_url not in page.content.decode()


def test_archiving_takes_the_deal_out_of_pages_but_keeps_its_history(client, deal, rep, teammate):
    """Archived, not deleted: the deal 404s on pages, the row and its timeline stay."""
    from django.urls import reverse

    from deals.models import Deal, DealEvent

    client.force_login(teammate)
    assert client.post(reverse("deals:deal_archive", args=[deal.pk])).status_code == 403
    client.force_login(rep)
    response = client.post(reverse("deals:deal_archive", args=[deal.pk]), {"reason": "Duplicate"})
    assert response.status_code == 302 and response.url == reverse("deals:deal_list")
    assert client.get(deal.get_absolute_url()).status_code == 404
    archived = Deal.objects.get(pk=deal.pk)
    assert archived.archived_at is not None
    assert DealEvent.objects.filter(deal=deal, reason="Duplicate", data__archived=True).exists()


def test_the_buyers_words_are_quoted_once_even_when_typed_with_quotes(rep_client, deal):
    """A signal typed with its own quotes (as the placeholder shows) is shown in one pair."""
    rep_client.post(
        panel_url(deal, "deal_signal_add"),
        {"kind": "explicit", "channel": "call", "note": "“How fast could we start?”"},
    )
    rep_client.post(
        panel_url(deal, "deal_signal_add"),
        {"kind": "pricing", "channel": "email", "note": '"Is there a discount?"'},
    )
    rep_client.post(
        panel_url(deal, "deal_signal_add"),
        {"kind": "pricing", "channel": "email", "note": 'They said "soon" twice'},
    )
    body = text(rep_client.get(deal.get_absolute_url()))
    panel = body[body.index('id="panel-signals"') :]
    panel = panel[: panel.index("</section>")]
    assert "“How fast could we start?”" in panel and "““" not in panel
    assert "“Is there a discount?”" in panel and '"Is there a discount?"' not in panel
    assert '“They said "soon" twice”' in panel  # quotes inside the words are kept
