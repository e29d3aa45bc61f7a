"""Changing a deal's owner: the service, its refusals, what moves with the deal, and races."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from deals import services
from deals.models import Deal, DealEvent, User
from followups.models import Reminder, RepTask
from followups.services import is_working_time
from notifications.models import Kind as NotificationKind
from notifications.models import Notification
from tests.concurrency import one_winner, run_concurrently
from tests.conftest import make_user
from tests.followups.conftest import default_cadence, make_version, send_contract  # noqa: F401


@pytest.fixture
def new_owner(team) -> User:
    """A teammate in New York who works Monday to Thursday, 10:00 to 16:00."""
    return make_user(
        "nora",
        team,
        time_zone="America/New_York",
        working_days="0123",
        workday_start="10:00",
        workday_end="16:00",
    )


@pytest.fixture
def with_followups(deal, rep, contact, default_cadence):  # noqa: F811
    from deals.models import Stakeholder

    services.stakeholder_add(deal=deal, by=rep, contact=contact, role=Stakeholder.Role.SIGNER)
    send_contract(make_version(deal, sent_at=timezone.now() - dt.timedelta(days=1)), by=rep)
    assert Reminder.objects.open().filter(deal=deal).exists()
    return deal


def _call_task(deal, owner, title="Call Ann"):
    return RepTask.objects.create(
        owner=owner,
        deal=deal,
        kind=RepTask.Kind.CALL,
        title=title,
        due_at=timezone.now() + dt.timedelta(days=2),
    )


def _owner_events(deal):
    return DealEvent.objects.filter(deal=deal, kind=DealEvent.Kind.OWNER)


def test_reassignment_moves_reminders_and_tasks_and_writes_one_event(
    with_followups, rep, manager, new_owner
):
    """The deal, its open follow-ups and the rep's open tasks move; one audit event says why."""
    deal = with_followups
    task = _call_task(deal, rep)
    managers_own = _call_task(deal, manager, "Coach Rita")
    done = _call_task(deal, rep, "Old call")
    done.completed_at = timezone.now()
    done.save()
    events_before = DealEvent.objects.filter(deal=deal).count()

    services.deal_reassign(
        deal=deal, by=manager, new_owner=new_owner, reason="Rita moves to the partner team"
    )

    deal.refresh_from_db()
    assert deal.owner == new_owner
    task.refresh_from_db()
    managers_own.refresh_from_db()
    done.refresh_from_db()
    assert task.owner == new_owner
    assert is_working_time(when=task.due_at, user=new_owner)
    assert managers_own.owner == manager
    assert done.owner == rep
    open_reminders = list(Reminder.objects.open().filter(deal=deal))
    assert open_reminders
    for reminder in open_reminders:
        assert is_working_time(when=reminder.due_at, user=new_owner)
    assert DealEvent.objects.filter(deal=deal).count() == events_before + 1
    event = _owner_events(deal).get()
    assert event.actor == manager
    assert "Rita moves to the partner team" in event.reason
    assert event.data["from_owner_id"] == rep.pk
    assert event.data["to_owner_id"] == new_owner.pk
    assert event.data["account_moved"] is False


def test_the_new_owner_is_notified(deal, manager, new_owner, django_capture_on_commit_callbacks):
    """The new owner gets a notification naming the previous owner and who reassigned."""
    with django_capture_on_commit_callbacks(execute=True):
        services.deal_reassign(deal=deal, by=manager, new_owner=new_owner, reason="Holidays")
    notice = Notification.objects.get(recipient=new_owner, kind=NotificationKind.DEAL_REASSIGNED)
    assert "Acme rollout" in notice.text and "Rita" in notice.text and "Mona" in notice.text


def test_the_account_owner_moves_when_asked(deal, manager, new_owner):
    """With move_account the account changes hands too (and the audit event says so)."""
    services.deal_reassign(
        deal=deal, by=manager, new_owner=new_owner, reason="Territory change", move_account=True
    )
    deal.account.refresh_from_db()
    assert deal.account.owner == new_owner
    assert _owner_events(deal).get().data["account_moved"] is True


def test_an_admin_may_reassign(deal, admin_user, new_owner):
    """An admin is not in the team but may hand its deals on."""
    services.deal_reassign(deal=deal, by=admin_user, new_owner=new_owner, reason="Cleanup")
    deal.refresh_from_db()
    assert deal.owner == new_owner


@pytest.mark.parametrize(
    ("who", "to", "reason", "error", "message"),
    [
        ("rep", "new_owner", "Going away", services.NotPermitted, "team's manager or an admin"),
        ("other_manager", "new_owner", "Mine now", services.NotPermitted, "team's manager"),
        ("manager", "inactive", "Cover", services.DealError, "not an active user"),
        ("manager", "other_rep", "Cover", services.DealError, "not a member of Team North"),
        ("manager", "rep", "Cover", services.DealError, "already owns this deal"),
        ("manager", "new_owner", "   ", services.DealError, "Say why"),
    ],
)
def test_refusals_change_nothing(request, deal, who, to, reason, error, message):
    """Reps, other teams' managers, inactive users, outsiders and a missing reason are refused
    with a message, and the deal keeps its owner and its history."""
    if to == "inactive":
        target = make_user("ivan", deal.team, is_active=False)
    else:
        target = request.getfixturevalue(to)
    by = request.getfixturevalue(who)
    with pytest.raises(error, match=message):
        services.deal_reassign(deal=deal, by=by, new_owner=target, reason=reason)
    deal.refresh_from_db()
    assert deal.owner.username == "rita"
    assert not _owner_events(deal).exists()


def test_bulk_reassignment_reports_each_deal(
    rep, manager, new_owner, make_deal, other_rep, account
):
    """Each deal is moved or refused with its reason; the moved ones get one event each."""
    first = make_deal(title="First")
    second = make_deal(title="Second")
    already = make_deal(title="Already Nora's", owner=new_owner)
    foreign_account = services.account_create(by=other_rep, team=other_rep.team, name="Zeta")
    foreign = services.deal_create(by=other_rep, account=foreign_account, title="Theirs")

    results = services.deals_reassign_many(
        deal_ids=[first.pk, second.pk, already.pk, foreign.pk],
        by=manager,
        new_owner=new_owner,
        reason="Rita leaves",
    )

    by_id = {r.deal_id: r for r in results}
    assert [r.deal_id for r in results] == [first.pk, second.pk, already.pk, foreign.pk]
    assert by_id[first.pk].moved and by_id[second.pk].moved
    assert not by_id[already.pk].moved and "already owns" in by_id[already.pk].message
    assert not by_id[foreign.pk].moved and "No such deal" in by_id[foreign.pk].message
    assert set(Deal.objects.filter(owner=new_owner).values_list("pk", flat=True)) == {
        first.pk,
        second.pk,
        already.pk,
    }
    assert Deal.objects.get(pk=foreign.pk).owner == other_rep
    for moved in (first, second):
        assert _owner_events(moved).count() == 1
    assert not _owner_events(already).exists()


def test_a_stale_reassignment_is_a_conflict(deal, manager, new_owner, teammate):
    """A manager who saw the old owner is told someone else handed the deal on meanwhile."""
    stale = Deal.objects.get(pk=deal.pk)
    services.deal_reassign(deal=deal, by=manager, new_owner=new_owner, reason="First")
    with pytest.raises(services.DealConflict, match="handed to Nora meanwhile"):
        services.deal_reassign(deal=stale, by=manager, new_owner=teammate, reason="Second")
    assert Deal.objects.get(pk=deal.pk).owner == new_owner


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_managers_reassigning_at_once(postgres, deal, manager, team, new_owner, teammate):
    """Two managers hand the same deal to different people at the same moment: one wins, the
    other is told it was handed on meanwhile; the deal has exactly one owner-change event."""
    second_manager = make_user("max", team, User.Role.MANAGER)
    plans = iter([(manager, new_owner), (second_manager, teammate)])
    import threading

    lock = threading.Lock()

    def load():
        with lock:
            by, to = next(plans)
        return Deal.objects.get(pk=deal.pk), by, to

    outcomes = run_concurrently(
        lambda loaded: services.deal_reassign(
            deal=loaded[0], by=loaded[1], new_owner=loaded[2], reason="Rebalance"
        ),
        load=load,
        threads=2,
    )
    winner, errors = one_winner(outcomes)
    assert "meanwhile" in errors[0].message
    deal.refresh_from_db()
    assert deal.owner == winner.result.owner
    assert _owner_events(deal).count() == 1


# --- the deal page's "Change owner" -------------------------------------------------------

HTMX = {"HTTP_HX_REQUEST": "true"}


def test_the_manager_changes_the_owner_on_the_deal_page(client, deal, manager, new_owner):
    """The htmx form answers with the panel naming the new owner, and the header updates."""
    client.force_login(manager)
    page = client.get(deal.get_absolute_url()).content.decode()
    assert "Change owner" in page
    response = client.post(
        reverse("deals:deal_reassign", args=[deal.pk]),
        {"new_owner": new_owner.pk, "reason": "Nora covers DACH", "expected_owner": deal.owner_id},
        **HTMX,
    )
    assert response.status_code == 200
    assert "<strong>Nora</strong> owns this deal" in response.content.decode()
    deal.refresh_from_db()
    assert deal.owner == new_owner


def test_form_errors_show_in_place_and_change_nothing(client, deal, manager, other_rep):
    """No reason, or someone outside the team: 400 with the message in the panel."""
    client.force_login(manager)
    url = reverse("deals:deal_reassign", args=[deal.pk])
    response = client.post(
        url, {"new_owner": other_rep.pk, "reason": "", "expected_owner": deal.owner_id}, **HTMX
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert 'id="panel-owner"' in body
    assert "Say why the deal changes hands." in body
    assert "Choose an active member of the deal" in body
    deal.refresh_from_db()
    assert deal.owner.username == "rita" and not _owner_events(deal).exists()


def test_a_stale_form_is_a_conflict_in_place(client, deal, manager, new_owner, teammate):
    """A manager whose page still shows the old owner gets 409 and the reason in the panel."""
    client.force_login(manager)
    seen = deal.owner_id
    services.deal_reassign(deal=deal, by=manager, new_owner=teammate, reason="Earlier")
    response = client.post(
        reverse("deals:deal_reassign", args=[deal.pk]),
        {"new_owner": new_owner.pk, "reason": "Later", "expected_owner": seen},
        **HTMX,
    )
    assert response.status_code == 409
    assert "handed to Tim meanwhile" in response.content.decode()


def test_reps_see_no_change_owner_form_and_are_refused(client, deal, rep, new_owner):
    """The owner is not a manager: no form, and a crafted post is 403."""
    client.force_login(rep)
    assert "Change owner" not in client.get(deal.get_absolute_url()).content.decode()
    response = client.post(
        reverse("deals:deal_reassign", args=[deal.pk]),
        {"new_owner": new_owner.pk, "reason": "Mine to give", "expected_owner": rep.pk},
    )
    assert response.status_code == 403


# --- the deal list's bulk bar: "Reassign to…" ----------------------------------------------


def test_bulk_reassign_from_the_list_reports_each_deal(
    client, manager, new_owner, make_deal, teammate
):
    """Ticked deals move; a refused one gets its own result; the job page shows them all."""
    first = make_deal(title="First")
    second = make_deal(title="Second", owner=new_owner)
    client.force_login(manager)
    page = client.get(reverse("deals:deal_list")).content.decode()
    assert 'value="reassign"' in page and f'value="{first.pk}" form="bulk"' in page
    response = client.post(
        reverse("deals:deals_bulk"),
        {
            "deal": [first.pk, second.pk],
            "action": "reassign",
            "new_owner": new_owner.pk,
            "reason": "Rita leaves",
        },
        follow=True,
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "1 deal now owned by Nora (notified). 1 refused." in body
    assert "Nora already owns this deal." in body
    first.refresh_from_db()
    assert first.owner == new_owner and _owner_events(first).count() == 1


def test_bulk_reassign_needs_deals_and_a_reason(client, manager, new_owner, deal):
    """Nothing ticked or no reason: the list says what is missing and nothing moves."""
    client.force_login(manager)
    url = reverse("deals:deals_bulk")
    data = {"action": "reassign", "new_owner": new_owner.pk, "reason": ""}
    body = client.post(url, data, follow=True).content.decode()
    assert "Tick the deals first (or choose all matching)." in body
    body = client.post(url, {**data, "deal": [deal.pk]}, follow=True).content.decode()
    assert "Say why the deals change hands" in body
    assert not DealEvent.objects.filter(kind=DealEvent.Kind.OWNER).exists()


def test_reps_get_no_bulk_reassign(client, rep, deal, new_owner):
    """Reps are not offered "Reassign to…", and a crafted post is refused."""
    client.force_login(rep)
    assert 'value="reassign"' not in client.get(reverse("deals:deal_list")).content.decode()
    response = client.post(
        reverse("deals:deals_bulk"),
        {"deal": [deal.pk], "action": "reassign", "new_owner": new_owner.pk, "reason": "x"},
    )
    assert response.status_code == 403


# --- the admin action -------------------------------------------------------------------


def test_the_admin_action_asks_for_the_owner_and_reason_then_reports_each_deal(
    client, admin_user, deal, make_deal, new_owner, other_rep
):
    """First a form (nothing moves), then each deal is handed over or refused with its reason."""
    foreign_account = services.account_create(by=other_rep, team=other_rep.team, name="Zeta")
    foreign = services.deal_create(by=other_rep, account=foreign_account, title="Theirs")
    client.force_login(admin_user)
    url = reverse("admin:deals_deal_changelist")
    selected = {"action": "reassign_deals", "_selected_action": [deal.pk, foreign.pk]}
    first = client.post(url, selected)
    assert first.status_code == 200 and b"New owner" in first.content
    assert not _owner_events(deal).exists()
    response = client.post(
        url,
        {**selected, "apply": "1", "new_owner": new_owner.pk, "reason": "Rebalancing"},
        follow=True,
    )
    body = response.content.decode()
    assert "handed over; the new owner is notified." in body
    assert "not a member of Team South" in body
    deal.refresh_from_db()
    foreign.refresh_from_db()
    assert deal.owner == new_owner and foreign.owner == other_rep
    assert _owner_events(deal).count() == 1
