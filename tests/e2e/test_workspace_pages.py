"""The workspace in headless Chromium: My day, the board and its moves, deal list, search."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from deals import services
from deals.models import Deal, DealState, StageSetting

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pipeline(rep, teammate, account, contact):
    """A few deals of Rita's (and one of Tim's) in different states, some needing action."""
    # Live-server tests flush the database, including the stage settings the migrations seed.
    for state, probability, stall in [
        ("intent_spotted", 10, 14),
        ("asked", 25, 5),
        ("agreement_sent", 60, 4),
        ("negotiating", 40, 7),
        ("follow_up", 70, 5),
    ]:
        StageSetting.objects.update_or_create(
            state=state, defaults={"probability": probability, "stall_after_days": stall}
        )
    today = timezone.localdate()
    services.contact_create(by=rep, account=account, first_name="Carl", last_name="Champion")
    deals = {
        "rollout": services.deal_create(
            by=rep,
            account=account,
            title="Acme rollout",
            amount=Decimal("48000"),
            next_step="Send the recap",
            next_step_due=today - dt.timedelta(days=2),
            expected_close_date=today + dt.timedelta(days=20),
        ),
        "pilot": services.deal_create(
            by=rep,
            account=account,
            title="Acme pilot",
            amount=Decimal("8000"),
            next_step="Book the review",
            next_step_due=today,
        ),
        "licences": services.deal_create(
            by=teammate, owner=teammate, account=account, title="Acme licences", amount=Decimal(9)
        ),
    }
    services.deal_transition(deal=deals["pilot"], transition="ask", by=rep)
    Deal.objects.filter(pk=deals["licences"].pk).update(
        last_activity_at=timezone.now() - dt.timedelta(days=40)
    )
    return deals


def card(page, deal):
    return page.locator(f"#card-{deal.pk}")


def open_moves(page, deal):
    card(page, deal).get_by_text("Move to…").click()
    menu = page.locator(f"#moves-{deal.pk}")
    menu.get_by_role("group").wait_for()
    return menu


def test_my_day_lists_what_needs_action(page, login, snap, pipeline):
    """A rep logs in and My day shows the overdue and due next steps with counts."""
    login(page, "rita")
    assert page.get_by_role("heading", name="My day").is_visible()
    next_steps = page.locator("#next-steps")
    assert next_steps.get_by_text("Overdue 2 days").is_visible()
    assert next_steps.get_by_text("Due today").is_visible()
    assert page.locator(".stats").get_by_text("next step overdue").is_visible()
    snap(page, "my-day")


def test_board_moves_a_card_and_explains_refusals(page, login, snap, pipeline):
    """On the board a rep moves a card with the keyboard-friendly menu; blocked moves say why."""
    login(page, "rita")
    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Board", exact=True
    ).click()
    page.get_by_role("heading", name="Pipeline board").wait_for()
    rollout = pipeline["rollout"]
    intent = page.locator("section[data-state='intent_spotted']")
    assert card(page, rollout).is_visible()
    assert intent.locator(f"#card-{rollout.pk}").count() == 1
    snap(page, "board")

    menu = open_moves(page, rollout)
    assert "Generate a contract first" in menu.inner_text()  # send_agreement is blocked
    snap(page, "board-move-menu")
    menu.get_by_role("button", name="Ask for the sale").click()
    asked = page.locator("section[data-state='asked']")
    asked.locator(f"#card-{rollout.pk}").wait_for()
    rollout.refresh_from_db()
    assert rollout.state == DealState.ASKED


def test_board_moves_work_from_the_keyboard(page, login, pipeline):
    """The move menu opens with Enter and a move fires with the keyboard alone."""
    login(page, "rita")
    page.goto("/board/")
    rollout = pipeline["rollout"]
    summary = card(page, rollout).locator("summary")
    summary.focus()
    page.keyboard.press("Enter")
    ask = page.locator(f"#moves-{rollout.pk}").get_by_role("button", name="Ask for the sale")
    ask.wait_for()
    ask.focus()
    page.keyboard.press("Enter")
    page.locator(f"section[data-state='asked'] #card-{rollout.pk}").wait_for()
    rollout.refresh_from_db()
    assert rollout.state == DealState.ASKED


def test_board_drag_and_drop_moves_a_card(page, login, snap, pipeline):
    """Dragging a card to the next column fires the transition; an impossible drop says why."""
    login(page, "rita")
    page.goto("/board/")
    rollout = pipeline["rollout"]
    card(page, rollout).drag_to(page.locator("section[data-state='follow_up']"))
    message = card(page, rollout).get_by_role("alert")
    message.wait_for()
    assert "cannot move straight to “Follow-up”" in message.inner_text()
    rollout.refresh_from_db()
    assert rollout.state == DealState.INTENT_SPOTTED
    card(page, rollout).drag_to(page.locator("section[data-state='asked']"))
    page.locator(f"section[data-state='asked'] #card-{rollout.pk}").wait_for()
    rollout.refresh_from_db()
    assert rollout.state == DealState.ASKED


def test_a_stale_move_is_refused_in_plain_words(page, login, snap, pipeline, rep):
    """If the deal moved meanwhile, the board's move is refused with the reason, not applied."""
    login(page, "rita")
    page.goto("/board/")
    rollout = pipeline["rollout"]
    menu = open_moves(page, rollout)
    services.deal_transition(deal=Deal.objects.get(pk=rollout.pk), transition="ask", by=rep)
    menu.get_by_role("button", name="Ask for the sale").click()
    dialog = page.locator("#modal")
    dialog.get_by_role("alert").wait_for()
    snap(page, "board-refused")
    assert "in another tab or window" in dialog.get_by_role("alert").inner_text()
    assert Deal.objects.get(pk=rollout.pk).events.filter(transition="ask").count() == 1


def test_mark_lost_from_the_board_asks_for_the_reason(page, login, snap, pipeline):
    """Closing as lost from the board opens the loss-reason form in a dialog first."""
    login(page, "rita")
    page.goto("/board/")
    pilot = pipeline["pilot"]
    menu = open_moves(page, pilot)
    menu.get_by_role("button", name="Close as lost").click()
    dialog = page.locator("#modal")
    dialog.get_by_label("Loss reason").wait_for()
    assert dialog.is_visible()
    snap(page, "board-mark-lost")
    dialog.get_by_label("Loss reason").select_option("timing")
    dialog.get_by_role("button", name="Close as lost").click()
    page.wait_for_url(lambda url: "/board/" not in url)
    pilot.refresh_from_db()
    assert pilot.state == DealState.CLOSED_LOST
    assert pilot.loss_reason == "timing"


def test_deal_list_filters_and_sorts(page, login, snap, pipeline):
    """The deal list filters by text and state and sorts by a column header."""
    login(page, "rita")
    page.goto("/deals/")
    rows = page.locator("table.table tbody tr")
    assert rows.count() == 3
    snap(page, "deal-list")
    page.get_by_label("State").select_option("asked")  # applies on change
    page.wait_for_url(lambda url: "state=asked" in url)
    assert rows.count() == 1
    assert "Acme pilot" in rows.first.inner_text()
    page.goto("/deals/")
    page.locator("#id_q").fill("licen")  # filters as you type, no submit
    page.wait_for_url(lambda url: "q=licen" in url)
    rows.filter(has_text="Acme licences").wait_for()
    assert rows.count() == 1
    page.goto("/deals/")
    page.get_by_role("link", name="Amount").click()
    page.wait_for_url(lambda url: "sort=amount" in url)
    assert "Acme licences" in rows.first.inner_text()


def test_global_search_finds_contacts_and_deals(page, login, snap, pipeline):
    """The search box in the top bar finds deals, accounts and contacts."""
    login(page, "rita")
    box = page.get_by_label("Search deals, accounts and contacts")
    box.fill("champion")
    box.press("Enter")
    page.get_by_role("heading", name="Search").wait_for()
    assert page.get_by_role("link", name="Carl Champion").is_visible()
    box = page.get_by_label("Search deals, accounts and contacts")
    box.fill("acme")
    box.press("Enter")
    page.wait_for_url(lambda url: "q=acme" in url)
    assert page.locator("#r-deals").inner_text().startswith("Deals (3)")
    snap(page, "search")


def test_deal_form_shows_errors_then_creates(page, login, snap, account, rep):
    """A new deal with a bad amount is refused clearly; corrected, it is created."""
    login(page, "rita")
    page.goto("/deals/new/")
    page.get_by_label("Deal name").fill("Acme expansion")
    page.locator("#id_account").select_option(str(account.pk))
    page.get_by_label("Amount").fill("-10")
    page.get_by_role("button", name="Create deal").click()
    assert page.get_by_text("The amount cannot be negative.").is_visible()
    snap(page, "deal-form-error")
    page.get_by_label("Amount").fill("1200")
    page.get_by_role("button", name="Create deal").click()
    page.wait_for_url(lambda url: "/deals/new/" not in url)
    assert Deal.objects.get(title="Acme expansion").amount == Decimal("1200")


def test_account_page(page, login, snap, pipeline, account):
    """The account page shows its deals and contacts."""
    login(page, "rita")
    page.goto(account.get_absolute_url())
    assert page.get_by_role("heading", name="Acme GmbH").is_visible()
    assert page.get_by_role("link", name="Acme rollout").is_visible()
    assert page.get_by_role("link", name="Ann Buyer").is_visible()
    snap(page, "account")


def test_manager_sees_the_team_and_narrows_to_own(page, login, snap, pipeline, manager):
    """A manager's My day covers the team, with a switch to only their own deals."""
    login(page, "mona")
    assert page.locator("#next-steps").get_by_text("Acme rollout").is_visible()
    assert page.locator("#stalled").get_by_text("Acme licences").is_visible()
    snap(page, "my-day-manager")
    page.get_by_role("link", name="Only mine").click()
    page.wait_for_url(lambda url: "mine=1" in url)
    assert page.locator("#next-steps").get_by_text("Acme rollout").count() == 0


def test_password_reset_by_email(page, snap, rep, mailoutbox):
    """A rep who forgot the password gets a link by email, sets a new one and logs in with it."""
    page.goto("/accounts/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill(rep.email)
    snap(page, "password-reset")
    page.get_by_role("button", name="Send the reset link").click()
    page.get_by_role("heading", name="Check your email").wait_for()
    link = next(line for line in mailoutbox[0].body.splitlines() if "/accounts/reset/" in line)
    page.goto(link.strip())
    page.get_by_label("New password", exact=True).fill("a-Long-new-pass-42")
    page.get_by_label("New password again").fill("a-Long-new-pass-42")
    page.get_by_role("button", name="Set the new password").click()
    page.get_by_role("heading", name="Your password is changed").wait_for()
    page.get_by_role("link", name="Log in").click()
    page.get_by_label("Username").fill("rita")
    page.get_by_label("Password").fill("a-Long-new-pass-42")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="My day").wait_for()
