"""The workspace pages: My day, board, deal list, search, deal/account/contact forms."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from contracts.models import ContractVersion
from deals import services
from deals.models import Account, Contact, Deal, DealState, StageSetting
from deals.selectors import deals_filtered, my_day
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def login(client, user):
    client.force_login(user)
    return client


def move(deal, *names, by):
    for name in names:
        kwargs = {"loss_reason": "price"} if name == "mark_lost" else {}
        # Set-up: fire as the move's own use case would (the contract is made by the test).
        kwargs["use_case"] = services.transition_record_rule(name).get("made_by", "")
        services.deal_transition(deal=deal, transition=name, by=by, **kwargs)
    return deal


def contract(deal, *, status="sent", sent_days_ago=3, number=1):
    return ContractVersion.objects.create(
        deal=deal,
        number=number,
        status=status,
        sent_at=timezone.now() - dt.timedelta(days=sent_days_ago),
    )


def age(deal, *, days):
    Deal.objects.filter(pk=deal.pk).update(
        last_activity_at=timezone.now() - dt.timedelta(days=days)
    )


# --- login and password reset ----------------------------------------------------


def test_pages_ask_anonymous_visitors_to_log_in(client):
    """Anonymous visitors are sent to the login page, which keeps where they were going."""
    response = client.get(reverse("deals:board"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    assert "next=" in response.url


def test_login_page_has_labels_and_reset_link(client):
    """The login page labels its fields and offers a password reset."""
    html = client.get(reverse("login")).content.decode()
    assert '<label for="id_username">Username</label>' in html
    assert '<label for="id_password">Password</label>' in html
    assert reverse("password_reset") in html


def test_password_reset_sends_a_working_link(client, rep, mailoutbox):
    """A reset email carries a link that lets the rep set a new password and log in with it."""
    response = client.post(reverse("password_reset"), {"email": rep.email})
    assert response.status_code == 302
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.subject == "Reset your Closing CRM password"
    link = next(line for line in mail.body.splitlines() if "/accounts/reset/" in line)
    path = link.split("://", 1)[1].split("/", 1)[1]
    response = client.get("/" + path, follow=True)
    assert b"Choose a new password" in response.content
    response = client.post(
        response.redirect_chain[-1][0],
        {"new_password1": "a-Long-new-pass-42", "new_password2": "a-Long-new-pass-42"},
        follow=True,
    )
    assert b"Your password is changed" in response.content
    rep.refresh_from_db()
    assert rep.check_password("a-Long-new-pass-42")


def test_password_reset_with_a_bad_link_says_so(client):
    """A stale or forged reset link says it no longer works, and offers a new one."""
    response = client.get("/accounts/reset/MQ/bad-token/", follow=True)
    assert b"This link no longer works" in response.content


def test_password_change_refuses_a_wrong_old_password(client, rep):
    """Changing the password with a wrong current one is refused clearly; nothing changes."""
    login(client, rep)
    assert client.get(reverse("password_change")).status_code == 200
    response = client.post(
        reverse("password_change"),
        {
            "old_password": "nope",
            "new_password1": "x-Long-pass-77",
            "new_password2": "x-Long-pass-77",
        },
    )
    assert response.status_code == 200
    assert "Your old password was entered incorrectly" in response.content.decode()
    rep.refresh_from_db()
    assert rep.check_password("pw")


# --- the shell ----------------------------------------------------------------------


def test_navigation_marks_the_current_page(client, rep):
    """The top navigation marks the page the user is on with aria-current."""
    login(client, rep)
    html = client.get(reverse("deals:board")).content.decode()
    assert f'<a href="{reverse("deals:board")}" aria-current="page">Board</a>' in html
    assert f'<a href="{reverse("home")}">My day</a>' in html
    assert 'role="search"' in html


def test_navigation_marks_the_deals_section_on_a_deal_page(client, rep, deal):
    """On a deal's own page the Deals item is marked as the current section."""
    login(client, rep)
    html = client.get(deal.get_absolute_url()).content.decode()
    assert f'<a href="{reverse("deals:deal_list")}" aria-current="true">Deals</a>' in html


def test_not_found_pages_render_in_the_shell(client, rep):
    """An unknown URL is a plain 404 for a signed-in user, not a server error."""
    login(client, rep)
    assert client.get("/no-such-page/").status_code == 404


# --- My day ----------------------------------------------------------------------------


def test_my_day_lists_due_next_steps_most_overdue_first(client, rep, make_deal):
    """Next steps due today or overdue are listed, most overdue first, with counts on top."""
    today = timezone.localdate()
    later = make_deal(title="Later", next_step="Call", next_step_due=today + dt.timedelta(days=3))
    due = make_deal(title="Due today", next_step="Send deck", next_step_due=today)
    late = make_deal(title="Late", next_step="Chase", next_step_due=today - dt.timedelta(days=4))
    day = my_day(rep)
    assert [d.pk for d in day.next_steps] == [late.pk, due.pk]
    assert later not in day.next_steps
    assert day.counts["overdue"] == 1
    assert day.counts["due_today"] == 1
    html = login(client, rep).get(reverse("home")).content.decode()
    assert "Overdue 4 days" in html
    assert "Due today" in html
    assert html.index("Late") < html.index("Due today</span>")


def test_my_day_shows_contracts_awaiting_signature_with_their_age(client, rep, make_deal):
    """Deals whose contract is with the buyer show how long ago it was sent, oldest first."""
    recent, old, signed = (make_deal(title=t) for t in ("Recent", "Old", "Signed"))
    for deal, days, status in ((recent, 1, "viewed"), (old, 9, "sent"), (signed, 5, "sent")):
        contract(deal, status=status, sent_days_ago=days)
        move(deal, "send_agreement", by=rep)
    ContractVersion.objects.filter(deal=signed).update(status="completed")
    day = my_day(rep)
    assert [d.pk for d in day.awaiting_signature] == [old.pk, recent.pk]
    assert day.awaiting_signature[0].contract_age_days == 9
    html = login(client, rep).get(reverse("home")).content.decode()
    assert "Sent 9 days ago" in html
    assert "Viewed" in html


def test_my_day_flags_stalled_deals_by_their_state_threshold(client, rep, make_deal):
    """A deal silent longer than its state's stall threshold is stalled, with a text label."""
    StageSetting.objects.filter(state=DealState.INTENT_SPOTTED).update(stall_after_days=10)
    quiet = make_deal(title="Quiet")
    silent = make_deal(title="Silent")
    fresh = make_deal(title="Fresh")
    age(quiet, days=12)
    age(silent, days=25)
    age(fresh, days=9)
    day = my_day(rep)
    assert [d.pk for d in day.stalled] == [silent.pk, quiet.pk]
    assert [d.stall_label for d in day.stalled] == ["Stalled badly", "Stalled"]
    html = login(client, rep).get(reverse("home")).content.decode()
    assert "No activity for 12 days (limit 10 in intent spotted)" in html
    assert 'class="pill bad">Stalled badly' in html


def test_my_day_ignores_closed_deals(rep, make_deal):
    """Closed deals never need action on My day."""
    deal = make_deal(next_step="x", next_step_due=timezone.localdate() - dt.timedelta(days=1))
    move(deal, "mark_lost", by=rep)
    assert my_day(rep).counts["open"] == 0
    assert my_day(rep).next_steps == []


def test_managers_see_their_team_on_my_day_or_only_their_own(client, rep, manager, make_deal):
    """A manager's My day covers the team; "only mine" narrows it to their own deals."""
    due = timezone.localdate()
    make_deal(title="Rita's deal", next_step="Call", next_step_due=due)
    assert my_day(manager).counts["due_today"] == 1
    assert my_day(manager, only_mine=True).counts["due_today"] == 0
    login(client, manager)
    assert "Rita&#x27;s deal" in client.get(reverse("home")).content.decode()
    assert "Rita&#x27;s deal" not in client.get(reverse("home") + "?mine=1").content.decode()


def test_reps_see_only_their_own_deals_on_my_day(rep, teammate, account, make_deal):
    """A rep's My day shows only their own deals, even when they may read the team's."""
    make_deal(by=teammate, owner=teammate, next_step="x", next_step_due=timezone.localdate())
    assert my_day(rep).counts["open"] == 0
    assert my_day(teammate).counts["open"] == 1


# --- board ----------------------------------------------------------------------------------


def test_board_shows_a_column_per_open_state_with_totals(client, rep, make_deal):
    """The board has one column per open state, with count, amount and weighted amount."""
    make_deal(title="Alpha", amount=Decimal("1000"))
    make_deal(title="Beta", amount=Decimal("3000"))
    response = login(client, rep).get(reverse("deals:board"))
    columns = response.context["columns"]
    assert [c["state"] for c in columns] == [
        "intent_spotted",
        "asked",
        "agreement_sent",
        "negotiating",
        "follow_up",
    ]
    first = columns[0]
    assert first["count"] == 2
    assert first["amount"] == Decimal("4000")
    assert first["weighted"] == Decimal("400.00")  # 10% at intent spotted
    html = response.content.decode()
    assert "4,000 EUR" in html
    assert "weighted 400 EUR (10%)" in html
    assert "Alpha" in html and "Beta" in html


def test_board_filters_by_owner_and_close_month(client, rep, teammate, make_deal):
    """The owner and close-month filters narrow the board's cards and totals."""
    make_deal(title="November", expected_close_date=dt.date(2030, 11, 5))
    make_deal(title="December", expected_close_date=dt.date(2030, 12, 5))
    make_deal(by=teammate, owner=teammate, title="Tim's", expected_close_date=dt.date(2030, 11, 9))
    login(client, rep)
    response = client.get(reverse("deals:board"), {"close": "2030-11"})
    titles = [d.title for d in response.context["columns"][0]["cards"]]
    assert sorted(titles) == ["November", "Tim's"]
    response = client.get(reverse("deals:board"), {"close": "2030-11", "owner": "me"})
    assert [d.title for d in response.context["columns"][0]["cards"]] == ["November"]
    assert response.context["columns"][0]["count"] == 1


def test_board_move_menu_offers_the_users_moves_with_reasons(client, rep, deal):
    """The "Move to…" menu lists the rep's moves; a blocked one says why in plain words."""
    html = login(client, rep).get(reverse("deals:board_moves", args=[deal.pk])).content.decode()
    assert "Ask for the sale" in html  # recorded on the deal page, with its answer
    assert f'href="{deal.get_absolute_url()}#panel-asks"' in html
    # The agreement goes out with a contract, nowhere else: the menu links the contract panel.
    assert f'href="{deal.get_absolute_url()}#contracts-panel"' in html
    assert "Send for signature" in html
    assert "Close as lost" in html
    assert "Override to won" not in html  # managers only


def test_board_move_menu_tells_readers_they_cannot_move(client, teammate, deal):
    """A teammate who may read a deal is told they cannot move it."""
    html = login(client, teammate).get(reverse("deals:board_moves", args=[deal.pk])).content
    assert b"only its owner or the team's manager can move it" in html


def test_board_move_menu_of_another_teams_deal_is_404(client, other_rep, deal):
    """Nobody opens the menu of a deal they cannot see."""
    response = login(client, other_rep).get(reverse("deals:board_moves", args=[deal.pk]))
    assert response.status_code == 404


# --- deal list ----------------------------------------------------------------------------


def test_deal_list_filters_by_state_owner_month_and_text(rep, teammate, make_deal):
    """deals_filtered applies every filter together, within what the user can see."""
    a = make_deal(title="Widget rollout", expected_close_date=dt.date(2031, 1, 10))
    make_deal(title="Gadget pilot", expected_close_date=dt.date(2031, 2, 10))
    t = make_deal(by=teammate, owner=teammate, title="Widget extension")
    move(t, "mark_lost", by=teammate)
    assert set(deals_filtered(rep, {"q": "widget"})) == {a, t}
    assert list(deals_filtered(rep, {"q": "widget", "state": "open"})) == [a]
    assert list(deals_filtered(rep, {"state": "closed_lost"})) == [t]
    assert list(deals_filtered(rep, {"owner": str(teammate.pk)})) == [t]
    assert list(deals_filtered(rep, {"close": "2031-01"})) == [a]
    assert list(deals_filtered(rep, {"q": "acme"})) != []  # the account name matches too


def test_deal_list_ignores_malformed_filters(rep, make_deal):
    """A malformed filter value is ignored rather than breaking the page."""
    deal = make_deal()
    params = {"state": "nope", "owner": "x", "close": "2031-13", "sort": "drop table", "team": "?"}
    assert list(deals_filtered(rep, params)) == [deal]


def test_deal_list_sorts_and_paginates(client, rep, make_deal):
    """The list sorts by the chosen column and pages 25 at a time."""
    for i in range(30):
        make_deal(title=f"Deal {i:02}", amount=Decimal(i * 100))
    login(client, rep)
    response = client.get(reverse("deals:deal_list"), {"sort": "-amount"})
    page = response.context["page"]
    assert len(page.object_list) == 25
    assert page.object_list[0].title == "Deal 29"
    html = response.content.decode()
    assert 'aria-sort="descending"' in html
    assert "1–25 of 30" in html
    response = client.get(reverse("deals:deal_list"), {"sort": "-amount", "page": 2})
    assert [d.title for d in response.context["page"]][-1] == "Deal 00"


def test_deal_list_filters_answer_htmx_with_the_table_only(client, rep, make_deal):
    """Typing in the filter (htmx) re-renders just the table, already filtered."""
    make_deal(title="Widget rollout")
    make_deal(title="Gadget pilot")
    response = login(client, rep).get(
        reverse("deals:deal_list"), {"q": "widget"}, headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert "<html" not in html
    assert "Widget rollout" in html
    assert "Gadget pilot" not in html


def test_deal_list_shows_only_visible_deals(client, rep, other_rep, make_deal):
    """Another team's deals never appear in the list."""
    other_account = services.account_create(by=other_rep, team=other_rep.team, name="Other Co")
    services.deal_create(by=other_rep, account=other_account, title="Secret deal")
    make_deal(title="Mine")
    html = login(client, rep).get(reverse("deals:deal_list")).content.decode()
    assert "Mine" in html
    assert "Secret deal" not in html


def test_reps_of_private_teams_see_only_their_own_deals(client, team, rep, teammate, make_deal):
    """If the team keeps deals private, a rep's list has only their own deals."""
    team.reps_see_team_deals = False
    team.save()
    make_deal(by=teammate, owner=teammate, title="Tim's deal")
    make_deal(title="Rita's deal")
    titles = [d.title for d in deals_filtered(rep, {})]
    assert titles == ["Rita's deal"]


# --- search -----------------------------------------------------------------------------------


def test_search_finds_deals_accounts_and_contacts(client, rep, deal, contact):
    """Search matches deal, account and contact names the user may see."""
    login(client, rep)
    results = client.get(reverse("deals:search"), {"q": "acme"}).context["results"]
    assert results["deals"] == [deal]
    assert [a.name for a in results["accounts"]] == ["Acme GmbH"]
    results = client.get(reverse("deals:search"), {"q": "Ann Buyer"}).context["results"]
    assert results["contacts"] == [contact]


def test_search_never_shows_another_teams_records(client, other_rep, deal, contact):
    """Another team's deals, accounts and contacts never show in search."""
    results = login(client, other_rep).get(reverse("deals:search"), {"q": "acme"}).context
    assert results["total"] == 0


def test_search_asks_for_two_characters(client, rep, deal):
    """A one-character search asks for more instead of listing everything."""
    html = login(client, rep).get(reverse("deals:search"), {"q": "a"}).content.decode()
    assert "Type at least two characters." in html


# --- deal forms ---------------------------------------------------------------------------------


def test_rep_creates_a_deal(client, rep, account):
    """A rep creates a deal for one of their accounts; it starts at intent spotted."""
    response = login(client, rep).post(
        reverse("deals:deal_create"),
        {
            "title": "New rollout",
            "account": account.pk,
            "amount": "2500",
            "currency": "EUR",
            "term_months": "12",
            "billing": "annually",
            "next_step": "Discovery call",
            "next_step_due": "2031-01-15",
        },
    )
    deal = Deal.objects.get(title="New rollout")
    assert response.status_code == 302
    assert response.url == deal.get_absolute_url()
    assert deal.owner == rep
    assert deal.state == DealState.INTENT_SPOTTED
    assert deal.amount == Decimal("2500.00")
    assert deal.next_step_due == dt.date(2031, 1, 15)
    assert deal.events.filter(kind="created").exists()


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"title": ""}, "title", "This field is required."),
        ({"amount": "-5"}, "amount", "The amount cannot be negative."),
        ({"amount": "lots"}, "amount", "Enter a number."),
        ({"next_step": "", "next_step_due": "2031-01-01"}, "next_step", "Say what the next step"),
        ({"expected_close_date": "31/31/2031"}, "expected_close_date", "Enter a valid date."),
        ({"account": "999999"}, "account", "Select a valid choice."),
    ],
)
def test_bad_deal_input_gets_a_clear_error_and_saves_nothing(
    client, rep, account, changes, field, message
):
    """Bad input on the deal form is refused with a message on the field; nothing is saved."""
    data = {
        "title": "Bad",
        "account": account.pk,
        "amount": "100",
        "currency": "EUR",
        "term_months": "12",
        "billing": "annually",
        **changes,
    }
    response = login(client, rep).post(reverse("deals:deal_create"), data)
    assert response.status_code == 200
    assert any(message in error for error in response.context["form"].errors[field])
    assert b"Nothing was saved" in response.content
    assert not Deal.objects.exists()


def test_deal_for_another_teams_account_is_refused(client, rep, other_rep):
    """A rep cannot pick another team's account (it is not even offered)."""
    theirs = services.account_create(by=other_rep, team=other_rep.team, name="Theirs")
    data = {"title": "X", "account": theirs.pk, "amount": "1", "currency": "EUR"}
    data |= {"term_months": "12", "billing": "annually"}
    response = login(client, rep).post(reverse("deals:deal_create"), data)
    assert "account" in response.context["form"].errors
    assert not Deal.objects.exists()


def test_manager_creates_a_deal_for_a_rep(client, manager, rep, account):
    """A manager may create a deal owned by one of their reps."""
    data = {"title": "For Rita", "account": account.pk, "owner": rep.pk, "amount": "10"}
    data |= {"currency": "EUR", "term_months": "12", "billing": "annually"}
    login(client, manager).post(reverse("deals:deal_create"), data)
    assert Deal.objects.get(title="For Rita").owner == rep


def test_admin_creates_a_deal_owned_by_the_accounts_owner(client, admin_user, rep, account):
    """An admin (no team of their own) creates a deal that goes to the account's owner."""
    data = {"title": "Admin-made", "account": account.pk, "amount": "10", "currency": "EUR"}
    data |= {"term_months": "12", "billing": "annually"}
    response = login(client, admin_user).post(reverse("deals:deal_create"), data)
    assert response.status_code == 302
    deal = Deal.objects.get(title="Admin-made")
    assert deal.owner == rep
    assert deal.team == rep.team


def test_rep_edits_a_deal_and_the_timeline_records_it(client, rep, deal):
    """Editing a deal saves the change through the service, which records it on the timeline."""
    response = login(client, rep).get(reverse("deals:deal_edit", args=[deal.pk]))
    assert response.context["form"]["title"].value() == "Acme rollout"
    data = {"title": "Acme rollout (phase 1)", "amount": "15000", "currency": "EUR"}
    data |= {"term_months": "24", "billing": "quarterly", "next_step": "Pricing call"}
    response = client.post(reverse("deals:deal_edit", args=[deal.pk]), data)
    assert response.status_code == 302
    deal.refresh_from_db()
    assert deal.title == "Acme rollout (phase 1)"
    assert deal.amount == Decimal("15000")
    assert deal.term_months == 24
    assert deal.events.filter(kind="edited").exists()


def test_bad_deal_edit_saves_nothing(client, rep, deal):
    """A bad edit is refused with a clear error and the deal stays as it was."""
    data = {"title": "Changed", "amount": "-1", "currency": "EUR"}
    data |= {"term_months": "12", "billing": "annually"}
    response = login(client, rep).post(reverse("deals:deal_edit", args=[deal.pk]), data)
    assert "The amount cannot be negative." in response.context["form"].errors["amount"]
    deal.refresh_from_db()
    assert deal.title == "Acme rollout"


def test_teammate_may_not_edit_a_deal(client, teammate, deal):
    """A teammate who can read the deal gets 403 on its edit page."""
    response = login(client, teammate).get(reverse("deals:deal_edit", args=[deal.pk]))
    assert response.status_code == 403


# --- accounts and contacts ---------------------------------------------------------


def test_rep_creates_an_account_for_their_team(client, rep):
    """A new account belongs to the rep's team and is owned by the rep."""
    response = login(client, rep).post(
        reverse("deals:account_create"), {"name": "Globex", "industry": "Energy"}
    )
    account = Account.objects.get(name="Globex")
    assert response.url == account.get_absolute_url()
    assert account.team == rep.team and account.owner == rep


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "This field is required."),
        ("   ", "This field is required."),
        ("acme gmbh", "already has an account named"),
    ],
)
def test_bad_account_input_is_refused(client, rep, account, name, message):
    """An empty or duplicate account name is refused on the name field; nothing is saved."""
    response = login(client, rep).post(reverse("deals:account_create"), {"name": name})
    assert response.status_code == 200
    assert any(message in e for e in response.context["form"].errors["name"])
    assert Account.objects.count() == 1


def test_account_page_lists_deals_contacts_status_and_manager(client, rep, manager, deal, contact):
    """The account page shows its deals, contacts, status and account manager."""
    services.account_update(account=deal.account, by=rep, account_manager=manager)
    html = login(client, rep).get(reverse("deals:account_detail", args=[deal.account_id]))
    html = html.content.decode()
    assert "Acme rollout" in html
    assert "Ann Buyer" in html
    assert "Prospect" in html
    assert "Mona" in html


def test_account_owner_edits_the_account(client, rep, account, manager):
    """The owner renames the account and names an account manager."""
    login(client, rep).post(
        reverse("deals:account_edit", args=[account.pk]),
        {"name": "Acme AG", "website": "acme.example", "account_manager": manager.pk},
    )
    account.refresh_from_db()
    assert account.name == "Acme AG"
    assert account.account_manager == manager


def test_account_rename_to_an_existing_name_is_refused(client, rep, account):
    """Renaming onto another account's name is refused with a clear message."""
    services.account_create(by=rep, team=rep.team, name="Globex")
    response = login(client, rep).post(
        reverse("deals:account_edit", args=[account.pk]), {"name": "GLOBEX"}
    )
    assert "already has an account named" in response.content.decode()
    account.refresh_from_db()
    assert account.name == "Acme GmbH"


def test_teammate_cannot_edit_an_account_they_do_not_own(client, teammate, account):
    """Only the owner or the team's manager edits an account."""
    response = login(client, teammate).get(reverse("deals:account_edit", args=[account.pk]))
    assert response.status_code == 403


def test_rep_adds_and_edits_a_contact(client, rep, account):
    """A contact is added to an account and then edited."""
    login(client, rep)
    response = client.post(
        reverse("deals:contact_create"),
        {"account": account.pk, "first_name": "Bo", "last_name": "Signer", "email": "bo@x.io"},
    )
    contact = Contact.objects.get(last_name="Signer")
    assert response.url == contact.get_absolute_url()
    client.post(
        reverse("deals:contact_edit", args=[contact.pk]),
        {"first_name": "Bo", "last_name": "Signer", "job_title": "CFO", "email": "bo@x.io"},
    )
    contact.refresh_from_db()
    assert contact.job_title == "CFO"
    html = client.get(contact.get_absolute_url()).content.decode()
    assert "CFO at" in html


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"first_name": "", "last_name": ""}, "A contact needs a first or a last name."),
        ({"first_name": "Al", "email": "not-an-email"}, "Enter a valid email address."),
    ],
)
def test_bad_contact_input_is_refused(client, rep, account, data, message):
    """A nameless contact or a bad email is refused clearly; nothing is saved."""
    response = login(client, rep).post(
        reverse("deals:contact_create"), {"account": account.pk, **data}
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Contact.objects.exists()


def test_contact_of_another_team_is_404(client, other_rep, contact):
    """Guessing another team's contact URL gives 404."""
    response = login(client, other_rep).get(reverse("deals:contact_detail", args=[contact.pk]))
    assert response.status_code == 404


def test_user_without_team_cannot_create_accounts(client, db):
    """Someone not yet in a team is told so instead of creating orphan accounts."""
    loner = make_user("lonely", None)
    response = login(client, loner).get(reverse("deals:account_create"))
    assert response.status_code == 403


def test_deal_list_rows_show_overdue_next_steps_of_open_deals(client, rep, make_deal):
    """An open deal whose next step is past due carries the Overdue pill; each row keeps its
    selection label, links and last-activity time."""
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    late = make_deal(title="Late & open", next_step="Call Ann", next_step_due=yesterday)
    html = login(client, rep).get(reverse("deals:deal_list")).content.decode()
    assert '<span class="pill bad">Overdue</span>' in html
    assert 'aria-label="Select “Late &amp; open”"' in html
    assert f'href="{late.get_absolute_url()}"' in html
    assert f'href="{late.account.get_absolute_url()}"' in html
    assert re.search(r'<time datetime="[^"]+" title="\d+\xa0minutes? ago">', html)
